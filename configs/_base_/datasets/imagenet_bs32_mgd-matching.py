# ImageNet-1k as in MMPretrain (data/imagenet/{train,val}, class folders or
# meta/{train,val}.txt; the reference's `valid` folder is MMPretrain's
# `val`), plus the dataloader of the MGD matching pass.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs32.py']

# The matching pass sees 20k training images (set num_samples in the
# MatchingUpdateHook) through the validation transforms (resize 256,
# centre-crop 224), so that the costs do not depend on augmentation.
# MatchingUpdateHook draws a fresh random subset of the whole (class-ordered)
# list for every matching and splits it between the ranks; it replaces any
# sampler named here.
matching_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(
        type='ImageNet',
        data_root='data/imagenet',
        split='train',
        pipeline=_base_.test_pipeline))
