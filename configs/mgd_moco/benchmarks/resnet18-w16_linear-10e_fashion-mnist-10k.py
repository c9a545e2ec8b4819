# Linear evaluation of the Fashion-MNIST MoCo-v2 teacher
# (mocov2_resnet18-w16_10e_fashion-mnist-10k.py): the student's protocol
# (resnet18-w4_linear-10e_fashion-mnist-10k.py) with 16 base channels.
_base_ = ['./resnet18-w4_linear-10e_fashion-mnist-10k.py']

width = 16
pretrained = 'work_dirs/mocov2_resnet18-w16_10e_fashion-mnist-10k/epoch_10.pth'
model = dict(
    backbone=dict(
        stem_channels=width,
        base_channels=width,
        init_cfg=dict(checkpoint=pretrained)),
    head=dict(in_channels=4 * width))
