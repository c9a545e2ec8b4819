# MoCo-v2 ResNet-34 alone on ImageNet-1k: the baseline of
# mocov2-mgd_resnet50-resnet34_8xb32-coslr-200e_in1k.py.
_base_ = ['./mocov2_resnet18_8xb32-coslr-200e_in1k.py']

model = dict(backbone=dict(depth=34))
