# Fashion-MNIST for the 2-core recipe: train on a fixed, class-balanced
# random 10k of the 60k training images (1000 of each class, drawn once
# with seed 0 by ClassBalancedSubset), evaluate on the 10k test images.
# MMPretrain's FashionMNIST reads the un-gzipped IDX files from data_root
# (`python tools/misc/prepare_fashion_mnist.py` writes them there).
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

dataset_type = 'FashionMNIST'
data_root = 'data/fashion-mnist'
train_per_class = 1000
subset_seed = 0
data_preprocessor = dict(
    num_classes=10,
    # Pixel mean and std of the Fashion-MNIST training set.
    mean=[72.94],
    std=[90.02],
    to_rgb=False)

# Flips only: in the short schedule the networks underfit, and random
# crops (padding 2) cost 1.5 points of held-out accuracy (measured for the
# student over 10 epochs).
train_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

# Loading in the training process: on two cores a worker process competes
# with the two compute threads, and the 28x28 transforms are cheap.
train_dataloader = dict(
    batch_size=128,
    num_workers=0,
    dataset=dict(
        type='ClassBalancedSubset',
        num_per_class=train_per_class,
        seed=subset_seed,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            split='train',
            download=False,
            # 60k tiny items read in one process: pickling them for
            # worker processes would cost more than it saves.
            serialize_data=False,
            pipeline=train_pipeline)),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        # MMPretrain's MNIST datasets pick the t10k files by test_mode and
        # ignore split: without it, "test" is the 60k training set.
        test_mode=True,
        download=False,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# The training images without augmentation, in a fixed order: what the
# MGD matching pass reads.
train_images_no_aug = dict(
    type='ClassBalancedSubset',
    num_per_class=train_per_class,
    seed=subset_seed,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        download=False,
        serialize_data=False,
        pipeline=test_pipeline))

# Images of the training split that the recipe never trains on (positions
# 5000-5999 of every class in the same permutation): the held-out set that
# hyper-parameters are chosen on. tools/run_main_job.py --eval-split heldout
# evaluates on it instead of the test images.
heldout_dataset = dict(
    type='ClassBalancedSubset',
    num_per_class=1000,
    seed=subset_seed,
    start=5000,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        download=False,
        serialize_data=False,
        pipeline=test_pipeline))
