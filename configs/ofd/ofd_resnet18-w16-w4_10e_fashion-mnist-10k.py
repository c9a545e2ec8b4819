# OFD (A Comprehensive Overhaul of Feature Distillation) on Fashion-MNIST with
# MMRazor's own OverhaulFeatureDistillation, the feature baseline for MGD: the
# MGD-AMP config's pair, schedule, positions and stage weights
# (OFDAtPositionsDistiller). The student is recorded where MGD records it and
# widened to the teacher's channels by a 1x1 conv + BN; the teacher at the
# MGD margin BN (each stage's last bn2), whose output MMPretrain's BasicBlock
# turns into the pre-ReLU stage output in place (tests/test_configs.py checks
# it). OFDLoss's mul_factor is the MGD config's loss factor, 1e3.
_base_ = ['../mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']

model = dict(
    type='OverhaulFeatureDistillation',
    distiller=dict(
        _delete_=True,
        type='OFDAtPositionsDistiller',
        positions=_base_.model.distiller.positions,
        loss_weights=[1 / 4, 1 / 2, 1],
        mul_factor=1e3))

custom_hooks = []  # no matching
