# KD alone, ImageNet-1k, ResNet-50 -> ShuffleNet-V2, for comparison with MGD.
# Everything but the distillation loss comes from the MGD config (same
# teacher and checkpoint, student, data and schedule). Logit KD as in the MGD
# reference (KL divergence at temperature 1.5).
_base_ = [
    './mgd-amp_resnet50-shufflenet-v2_8xb32_in1k.py',
    '../_base_/distill/logit-kd_tau1.5.py'
]

model = dict(
    type='SingleTeacherDistill',
    distiller=dict(
        _delete_=True, type='ConfigurableDistiller', **_base_.logit_kd))

custom_hooks = []  # no matching
