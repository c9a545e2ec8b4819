# The CUB-200-2011 teacher of the MGD transfer recipes: MMPretrain's ResNet-50
# fine-tuned from the model-zoo ImageNet-1k weights on the paper's CUB schedule
# (120 epochs, 4 GPUs x 16 images, SGD Nesterov lr 0.01, steps, wd 1e-4), 224
# px. The paper's teacher: 20.02 top-1 error. The MGD, KD and OFD CUB configs
# read this run's last checkpoint, work_dirs/resnet50_4xb16_cub/epoch_120.pth.
# (MMPretrain's own CUB ResNet-50 checkpoint is trained at 448 px from
# ImageNet-21k weights, a different teacher from the paper's.)
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    '../_base_/datasets/cub-folders_bs16.py',
    '../_base_/schedules/cub_bs64_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

pretrained = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone')),
    head=dict(num_classes=200))
