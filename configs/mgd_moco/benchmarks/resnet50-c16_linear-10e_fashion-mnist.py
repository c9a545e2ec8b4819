# Linear evaluation on Fashion-MNIST of the Fashion-MNIST MoCo-v2 teacher,
# a ResNet-50 with 16 base channels; see
# resnet18-c16_linear-10e_fashion-mnist.py.
_base_ = ['./resnet18-c16_linear-10e_fashion-mnist.py']

pretrained = 'work_dirs/mocov2_resnet50-c16_20e_fashion-mnist/epoch_20.pth'

model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=512))
