# CUB-200-2011 in the folder layout of the MGD reference (read by
# MMPretrain's CustomDataset, class index = sorted folder name):
#
#   data/cub200/train/001.Black_footed_Albatross/*.jpg
#                     ...
#                     200.Common_Yellowthroat/*.jpg
#   data/cub200/valid/001.Black_footed_Albatross/*.jpg
#                     ...
#
# 5,994 training and 5,794 validation images (the official split), at 224 px
# with the ImageNet transforms, as the reference trains on it.
dataset_type = 'CustomDataset'
data_root = 'data/cub200'
data_preprocessor = dict(
    num_classes=200,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='valid',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# The MGD matching pass: the training split through the validation
# transforms. MatchingUpdateHook draws num_samples random images of it for
# every matching (the folders are read in class order).
matching_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline=test_pipeline))
