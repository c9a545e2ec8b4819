# Linear evaluation on Fashion-MNIST of a Fashion-MNIST MoCo-v2 (+ MGD)
# ResNet-34 (16 base channels); see resnet18-c16_linear-10e_fashion-mnist.py.
_base_ = ['./resnet18-c16_linear-10e_fashion-mnist.py']

pretrained = 'work_dirs/mocov2-mgd_resnet50-resnet34-c16_20e_fashion-mnist/epoch_20.pth'  # noqa: E501

model = dict(
    backbone=dict(
        depth=34,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
