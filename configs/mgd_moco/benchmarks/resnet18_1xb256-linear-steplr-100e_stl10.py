# Linear evaluation of a MoCo-v2 (+ MGD) ResNet-18 pretrained on ImageNet,
# on STL-10 (10 classes, 5k labelled training and 8k test images of 96 px),
# in the folder layout MMPretrain's CustomDataset reads:
#   data/stl10/train/<class name>/*.png   data/stl10/test/<class name>/*.png
# Frozen backbone (the `backbone.*` of a pretraining checkpoint), a linear
# head trained with SGD lr 30 for 100 epochs, images resized to 224 px as in
# pretraining. Another checkpoint:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_N.pth
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_steplr_100e.py',
    'mmpretrain::_base_/default_runtime.py',
]

pretrained = 'work_dirs/mocov2-mgd_resnet50-resnet18_8xb32-coslr-200e_in1k/epoch_200.pth'  # noqa: E501
data_root = 'data/stl10'

model = dict(
    backbone=dict(
        frozen_stages=4,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(num_classes=10))

data_preprocessor = dict(
    num_classes=10,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root=f'{data_root}/train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=f'{data_root}/test',
        pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
