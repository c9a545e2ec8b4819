# Fashion-MNIST for the linear evaluation of a pretrained backbone: the 60k
# training images (random crop and flip) train the linear head, the 10k
# test images evaluate it.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion-mnist'
data_preprocessor = dict(
    num_classes=10,
    # Pixel mean and std of the Fashion-MNIST training set.
    mean=[72.94],
    std=[90.02],
    to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        download=False,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        # MMPretrain's MNIST datasets pick the t10k files by test_mode and
        # ignore split.
        test_mode=True,
        download=False,
        pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
