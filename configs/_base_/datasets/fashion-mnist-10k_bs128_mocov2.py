# Fashion-MNIST for MoCo-v2 pretraining on the 2-core recipe's images: the
# same class-balanced 10k of the training images as the classification
# recipe (fashion-mnist-10k_bs128.py), two views per image, MoCo-v2's
# augmentations as far as they apply to small grey images (random resized
# crop, brightness jitter, flip; MMPretrain's contrast, saturation and hue
# jitter need colour images, and a Gaussian blur would wipe out 28 px
# images). No labels are read in pretraining; the linear evaluation
# (configs/mgd_moco/benchmarks) uses the labels of these same images.
_base_ = ['./fashion-mnist-10k_bs128.py']

data_preprocessor = dict(
    _delete_=True,
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
train_dataloader = dict(
    # The queue takes whole batches.
    drop_last=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        dataset=dict(pipeline=[
            dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
            dict(type='PackInputs'),
        ])))

# Pretraining has no validation: the linear evaluation measures it.
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None

# For MGD's matching pass: the training images without augmentation.
matching_dataloader = dict(
    batch_size=256,
    num_workers=0,
    # MoCo's SelfSupDataPreprocessor takes stacked batches.
    collate_fn=dict(type='default_collate'),
    dataset=_base_.train_images_no_aug)
