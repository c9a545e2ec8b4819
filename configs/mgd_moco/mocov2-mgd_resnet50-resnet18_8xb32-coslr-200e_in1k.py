# MoCo-v2 + MGD-AMP on ImageNet-1k: the frozen MoCo-v2 ResNet-50 backbone
# teaches the query backbone of a MoCo-v2 ResNet-18.
# MMPretrain's MoCo-v2 recipe: 8 GPUs x 32 images, SGD lr 0.03 with a
# cosine schedule, 200 epochs, temperature 0.2, queue 65536. The matching
# is recomputed at the seed recipe's epochs, on 20k training images with
# validation-style transforms.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/mocov2-mgd_resnet50-resnet18.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

matching_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        # Or epochs='log': round(200 ** (k / 10)) for k < 10.
        epochs=[1, 2, 3, 6, 9, 15, 26, 43, 74, 126],
        num_samples=20000,
        dataloader=dict(
            batch_size=64,
            num_workers=5,
            # MoCo's SelfSupDataPreprocessor takes stacked batches.
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='ImageNet',
                data_root='data/imagenet',
                split='train',
                pipeline=matching_pipeline))),
]

# only keeps the latest 3 checkpoints
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
