# Linear evaluation of a MoCo-v2 (+ MGD) ResNet-34 on ImageNet-1k; see
# resnet18_8xb32-linear-steplr-100e_in1k.py.
_base_ = ['./resnet18_8xb32-linear-steplr-100e_in1k.py']

pretrained = 'work_dirs/mocov2-mgd_resnet50-resnet34_8xb32-coslr-200e_in1k/epoch_200.pth'  # noqa: E501

model = dict(
    backbone=dict(
        depth=34,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
