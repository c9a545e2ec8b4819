# MGD-AMP plus logit KD (the KD config's loss: MMRazor's KLDivergence at
# temperature 1.5) in the same distiller.
_base_ = [
    './mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py',
    '../_base_/distill/logit-kd_tau1.5.py'
]

model = dict(distiller=dict(**_base_.logit_kd))
