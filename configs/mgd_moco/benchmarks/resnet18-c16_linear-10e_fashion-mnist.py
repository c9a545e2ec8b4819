# Linear evaluation on Fashion-MNIST of the ResNet-18 (16 base channels) of
# a Fashion-MNIST MoCo-v2 (+ MGD) pretraining: frozen backbone, a linear
# head trained with SGD lr 30 (MoCo's linear protocol) for 10 epochs. The
# backbone is the `backbone.*` of the pretraining checkpoint (the student's
# query backbone); by default the last checkpoint of the MGD run, else
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_N.pth
_base_ = [
    '../../_base_/datasets/fashion-mnist_bs128_linear.py',
    'mmpretrain::_base_/default_runtime.py',
]

pretrained = 'work_dirs/mocov2-mgd_resnet50-resnet18-c16_20e_fashion-mnist/epoch_20.pth'  # noqa: E501

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        frozen_stages=4,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[6, 8], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
