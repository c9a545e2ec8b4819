# MGD-AMP, ImageNet-1k: model-zoo ResNet-50 teaches ResNet-18.
# 8 GPUs x 32 images, the MMPretrain ResNet recipe (SGD 0.1, 100 epochs,
# steps at 30/60/90); matching before every epoch on 20k training images.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/mgd-amp_resnet50-resnet18.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

# Validation-style transforms for the matching pass.
matching_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=1,
        num_samples=20000,
        dataloader=dict(
            batch_size=64,
            num_workers=5,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='ImageNet',
                data_root='data/imagenet',
                split='train',
                pipeline=matching_pipeline))),
]

# Evaluate the student (and the teacher, once) with MMRazor's loop.
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
