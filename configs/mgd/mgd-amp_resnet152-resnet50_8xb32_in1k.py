# MGD-AMP, ImageNet-1k: the model-zoo ResNet-152 (78.48 top-1) teaches
# ResNet-50 at the four stage outputs (equal widths: the matching permutes
# channels). The paper's ImageNet schedule (120 epochs, 8 GPUs x 32 images,
# SGD Nesterov lr 0.1, warm-up, steps, wd 1e-4); the matching is recomputed
# before every epoch on 20k training images.
_base_ = [
    '../_base_/datasets/imagenet_bs32_mgd-matching.py',
    '../_base_/schedules/imagenet_bs256_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/mgd-amp_resnet152-resnet50.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=1,
        num_samples=20000,
        dataloader=_base_.matching_dataloader),
]

# Validate the student (and the teacher, once) with MMRazor's loop.
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
