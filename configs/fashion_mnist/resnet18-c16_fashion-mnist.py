# The student of the Fashion-MNIST MGD recipe trained alone (the baseline):
# a CIFAR-stem ResNet-18 with 16 base channels, the teacher's schedule.
_base_ = ['./resnet50-c16_fashion-mnist.py']

model = dict(
    backbone=dict(depth=18),
    head=dict(in_channels=128))
