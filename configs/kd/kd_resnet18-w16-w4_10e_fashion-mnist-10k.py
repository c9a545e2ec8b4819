# Logit KD on Fashion-MNIST, the baseline for MGD: MMRazor's
# SingleTeacherDistill with KLDivergence (temperature 1.5) added to the
# student's cross-entropy. Everything but the distillation loss comes from
# the MGD config (same pair, teacher checkpoint, data and schedule).
_base_ = [
    '../mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py',
    '../_base_/distill/logit-kd_tau1.5.py'
]

model = dict(
    type='SingleTeacherDistill',
    distiller=dict(
        _delete_=True, type='ConfigurableDistiller', **_base_.logit_kd))

custom_hooks = []  # no matching
