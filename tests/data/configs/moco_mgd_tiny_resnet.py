# MoCo-v2 + MGD between tiny MMPretrain ResNets (teacher ResNet-50 layout,
# student ResNet-18 layout, CIFAR stems, 4 base channels) on
# folder-per-class images of 32 px. The tests fill in data_root and the
# teacher checkpoint with --cfg-options.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

data_root = None
teacher_ckpt = None
student_last_block = [1, 1, 1, 1]
teacher_last_block = [2, 3, 5, 2]
student_channels = [4, 8, 16, 32]
teacher_channels = [16, 32, 64, 128]
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
loss_factor = 1e2

model = dict(
    type='MoCoMGD',
    queue_len=32,
    feat_dim=8,
    encoder_momentum=0.99,
    shuffle_bn=True,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64.0, 64.0, 64.0],
        to_rgb=True),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=4,
        base_channels=4,
        out_indices=(3, )),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=32,
        hid_channels=32,
        out_channels=8,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2),
    teacher_backbone=dict(
        type='ResNet_CIFAR',
        depth=50,
        stem_channels=4,
        base_channels=4,
        out_indices=(3, )),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='MatchingGuidedDistiller',
        reducer=dict(type='AbsMaxPoolReducer'),
        positions=dict(
            student=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.{student_last_block[k]}.relu',
                    record_idx=1,
                    channels=student_channels[k]) for k in range(4)
            ],
            teacher=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.{teacher_last_block[k]}.relu',
                    record_idx=2,
                    channels=teacher_channels[k],
                    margin_bn=f'layer{k + 1}.{teacher_last_block[k]}.bn3')
                for k in range(4)
            ],
            loss_weight=stage_weights,
            loss_factor=loss_factor)))

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.)),
    dict(type='RandomFlip', prob=0.5),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
            dict(type='PackInputs'),
        ]))

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        epochs=[1, 2],
        num_samples=16,
        show_progress=False,
        dataloader=dict(
            batch_size=8,
            num_workers=0,
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='CustomDataset',
                data_root=data_root,
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='PackInputs'),
                ])))
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=1e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=0, end=2)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
randomness = dict(seed=0, deterministic=False)
log_level = 'INFO'
