# MoCo-v2 on Fashion-MNIST, a CIFAR-stem ResNet-34 student alone (the
# baseline of mocov2-mgd_resnet50-resnet34-c16_20e_fashion-mnist.py).
_base_ = ['./mocov2_resnet18-c16_20e_fashion-mnist.py']

model = dict(backbone=dict(depth=34))
