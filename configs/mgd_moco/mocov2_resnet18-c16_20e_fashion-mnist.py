# MoCo-v2 on Fashion-MNIST, the student alone (the baseline of
# mocov2-mgd_resnet50-resnet18-c16_20e_fashion-mnist.py): a CIFAR-stem
# ResNet-18 with 16 base channels (stage channels 16, 32, 64, 128), the
# teacher's recipe.
_base_ = ['./mocov2_resnet50-c16_20e_fashion-mnist.py']

model = dict(
    backbone=dict(depth=18), neck=dict(in_channels=128, hid_channels=128))
