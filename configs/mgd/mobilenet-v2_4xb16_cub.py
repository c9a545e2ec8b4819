# MMPretrain's MobileNet-V2 1.0x fine-tuned alone on CUB-200-2011 from the
# model-zoo ImageNet-1k weights, on the paper's CUB schedule (120 epochs, 4
# GPUs x 16 images, SGD Nesterov lr 0.01, steps, wd 1e-4): the baseline of the
# KD, OFD and MGD configs that teach it, with the same network, initialisation,
# data and schedule. The paper reports 24.61 top-1 error for its MobileNet-V2
# with this recipe.
_base_ = [
    'mmpretrain::_base_/models/mobilenet_v2_1x.py',
    '../_base_/datasets/cub-folders_bs16.py',
    '../_base_/schedules/cub_bs64_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

pretrained = 'https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth'  # noqa: E501
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone')),
    head=dict(num_classes=200))
