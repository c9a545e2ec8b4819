# MoCo-v2 pretraining on Fashion-MNIST of the teacher of the Fashion-MNIST
# MoCo + MGD configs: a CIFAR-stem ResNet-50 with 16 base channels (stage
# channels 64, 128, 256, 512). A 2-core recipe: one process, 20 epochs,
# batch 128, lr 0.03 with a cosine schedule, temperature 0.2, m = 0.999,
# a queue of 4096 keys.
_base_ = [
    '../_base_/datasets/fashion-mnist_bs128_mocov2.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

model = dict(
    type='ConfigurableMoCo',
    queue_len=4096,
    feat_dim=128,
    encoder_momentum=0.999,
    # One process: shuffling a single batch would change nothing. With
    # tools/dist_train.sh, --cfg-options model.shuffle_bn=True.
    shuffle_bn=False,
    backbone=dict(
        type='ResNet_CIFAR',
        depth=50,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=5e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=20, by_epoch=True, begin=0, end=20)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=128)
