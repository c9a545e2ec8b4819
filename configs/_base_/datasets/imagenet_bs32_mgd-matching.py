# ImageNet-1k as in MMPretrain (data/imagenet/{train,val}, class folders or
# meta/{train,val}.txt; the reference's `valid` folder is MMPretrain's
# `val`), plus the dataloader of the MGD matching pass.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs32.py']

# The matching pass sees 20k training images (set num_samples in the
# MatchingUpdateHook) through the validation transforms (resize 256,
# centre-crop 224), so that the costs do not depend on augmentation. The
# training list is ordered by class: the sampler shuffles it with a fixed
# seed, so the pass covers every class, and every matching sees the same
# images. Under DDP each rank takes its share of that permutation.
matching_dataloader = dict(
    batch_size=64,
    num_workers=5,
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    dataset=dict(
        type='ImageNet',
        data_root='data/imagenet',
        split='train',
        pipeline=_base_.test_pipeline))
