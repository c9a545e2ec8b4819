# MoCo-v2 on Fashion-MNIST, the student alone (the baseline of
# mocov2-mgd_resnet18-w16-w4_10e_fashion-mnist-10k.py): the classification
# recipe's student network (4 base channels: stages of 4, 8, 16) with the
# teacher's pretraining recipe.
_base_ = ['./mocov2_resnet18-w16_10e_fashion-mnist-10k.py']

width = 4
model = dict(
    backbone=dict(stem_channels=width, base_channels=width),
    neck=dict(in_channels=4 * width, hid_channels=4 * width))
