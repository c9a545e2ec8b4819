# MGD-AMP, CUB-200-2011 transfer: the CUB-fine-tuned ResNet-50 of
# resnet50_4xb16_cub.py teaches MMPretrain's MobileNet-V2 1.0x, initialised
# from the model-zoo ImageNet-1k weights, at four positions. The paper's CUB
# recipe: 120 epochs, 4 GPUs x 16 images, SGD Nesterov lr 0.01, steps, wd
# 1e-4, matching every 2 epochs. The paper reports 20.47 top-1 error (its
# teacher 20.02, its student alone 24.61) with its own MobileNet-V2, whose
# strides differ from MMPretrain's (see README, Recipes).
_base_ = [
    '../_base_/datasets/cub-folders_bs16.py',
    '../_base_/schedules/cub_bs64_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/mgd-amp_resnet50-mobilenet-v2.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

# Written by configs/mgd/resnet50_4xb16_cub.py (train it first).
teacher_ckpt = 'work_dirs/resnet50_4xb16_cub/epoch_120.pth'
student_pretrained = 'https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth'  # noqa: E501
model = dict(
    architecture=dict(
        backbone=dict(
            init_cfg=dict(
                type='Pretrained',
                checkpoint=student_pretrained,
                prefix='backbone')),
        head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    teacher_ckpt=teacher_ckpt)

# The reference rematches every 2 epochs on CUB: before epochs 1, 3, 5, ...
custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=2,
        num_samples=5994,  # the whole training split
        dataloader=_base_.matching_dataloader),
]

# Validate the student (and the teacher, once) with MMRazor's loop.
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
