# The student of the Fashion-MNIST recipe trained alone (the baseline): the
# teacher's network with 4 base channels (stages of 4, 8, 16 channels, a
# quarter of the teacher's width), the schedule that every student of the
# recipe uses.
_base_ = ['./resnet18-w16_10e_fashion-mnist-10k.py']

model = dict(
    backbone=dict(stem_channels=4, base_channels=4), head=dict(in_channels=16))

max_epochs = 10
param_scheduler = dict(T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
