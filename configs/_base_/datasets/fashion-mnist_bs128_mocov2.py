# Fashion-MNIST (60k training images, 28x28 grey) for MoCo-v2 pretraining:
# two views per image, MoCo-v2's augmentations as far as they apply to
# small grey images (random resized crop, brightness jitter, flip; MMPretrain's
# contrast, saturation and hue jitter need colour images, and a Gaussian
# blur would wipe out 28 px images).
# `python tools/misc/prepare_fashion_mnist.py` writes the files MMPretrain's
# FashionMNIST reads into data_root.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion-mnist'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    # Pixel mean and std of the Fashion-MNIST training set.
    mean=[72.94],
    std=[90.02],
    to_rgb=False)

view_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=28,
        crop_ratio_range=(0.2, 1.),
        backend='pillow'),
    dict(
        type='RandomApply',
        transforms=[dict(type='ColorJitter', brightness=0.4, backend='cv2')],
        prob=0.8),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    # The queue takes whole batches.
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        download=False,
        pipeline=train_pipeline))

# For MGD's matching pass: the training images without augmentation.
matching_dataloader = dict(
    batch_size=256,
    num_workers=2,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        download=False,
        pipeline=[dict(type='PackInputs')]))
