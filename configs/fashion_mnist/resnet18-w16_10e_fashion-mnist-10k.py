# The teacher of the Fashion-MNIST recipe: a 3-stage CIFAR-stem ResNet-18
# with 16 base channels (stages of 16, 32, 64 channels at 28, 14, 7 px),
# trained for 10 epochs on the class-balanced 10k training subset.
_base_ = [
    '../_base_/models/resnet18-cifar-3stage_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist-10k_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    head=dict(in_channels=64))

max_epochs = 10
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs)
# Validation on the test images once, at the end: on two cores a pass over
# them costs about as much as a tenth of a training epoch.
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=128)
