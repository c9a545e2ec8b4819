# MGD-AMP, ImageNet-1k, the paper's headline setting: the model-zoo ResNet-50
# (76.55 top-1) teaches MobileNet-V1 1.0x at four positions. The paper's
# schedule: 120 epochs, 8 GPUs x 32 images, SGD with Nesterov momentum 0.9,
# lr 0.1 with a linear warm-up and step decays, weight decay 1e-4; the
# matching is recomputed before every epoch on 20k training images. The
# paper reports 28.53 top-1 error (its own ResNet-50 teacher: 23.85; the
# student alone: 31.13).
_base_ = [
    '../_base_/datasets/imagenet_bs32_mgd-matching.py',
    '../_base_/schedules/imagenet_bs256_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/mgd-amp_resnet50-mobilenet-v1.py',
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
