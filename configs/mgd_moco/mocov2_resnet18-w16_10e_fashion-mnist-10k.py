# MoCo-v2 pretraining on Fashion-MNIST of the teacher of
# mocov2-mgd_resnet18-w16-w4_10e_fashion-mnist-10k.py: the classification
# recipe's teacher network (3-stage CIFAR-stem ResNet-18, 16 base channels:
# stages of 16, 32, 64) on the recipe's 10k training images. A 2-core
# recipe: one process, 10 epochs of batch 128, SGD lr 0.03 with a cosine
# schedule, temperature 0.2, a queue of 4096 keys (32 batches).
_base_ = [
    '../_base_/models/resnet18-cifar-3stage_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist-10k_bs128_mocov2.py',
    'mmpretrain::_base_/default_runtime.py',
]

width = 16
model = dict(
    _delete_=True,
    type='ConfigurableMoCo',
    queue_len=4096,
    feat_dim=128,
    # MoCo's 0.999 lets the key encoder follow the query encoder over about
    # 1000 steps; the whole schedule is 780 steps, so 0.99 (about 100).
    encoder_momentum=0.99,
    # One process: shuffling a single batch would change nothing.
    shuffle_bn=False,
    backbone=dict(
        _base_.model.backbone,
        stem_channels=width,
        base_channels=width,
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=4 * width,
        hid_channels=4 * width,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))

max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=5e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=128)
