# MMPretrain's ShuffleNet-V2 1.0x fine-tuned alone on CUB-200-2011 from the
# model-zoo ImageNet-1k weights, on the paper's CUB schedule (120 epochs, 4
# GPUs x 16 images, SGD Nesterov lr 0.01, steps, wd 1e-4): the baseline of the
# KD, OFD and MGD configs that teach it, with the same network, initialisation,
# data and schedule. The paper reports 31.39 top-1 error for its ShuffleNet-V2
# with this recipe.
_base_ = [
    'mmpretrain::_base_/models/shufflenet_v2_1x.py',
    '../_base_/datasets/cub-folders_bs16.py',
    '../_base_/schedules/cub_bs64_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

pretrained = 'https://download.openmmlab.com/mmclassification/v0/shufflenet_v2/shufflenet_v2_batch1024_imagenet_20200812-5bf4721e.pth'  # noqa: E501
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone')),
    head=dict(num_classes=200))
