# OFD alone, CUB-200, ResNet-50 -> ShuffleNet-V2, for comparison with MGD.
# OFD: Heo et al., "A Comprehensive Overhaul of Feature Distillation",
# ICCV 2019, with MMRazor's OverhaulFeatureDistillation. Everything but the
# distillation comes from the MGD config (same teacher and checkpoint,
# student, data and schedule), and OFD distils at its positions
# (OFDAtPositionsDistiller): the student where MGD records it, through a
# 1x1 conv + BN up to the teacher's width; the teacher at the MGD margin BN,
# whose output MMPretrain's Bottleneck turns into the pre-ReLU stage output
# in place (tests/test_configs.py checks this).
_base_ = ['./mgd-amp_resnet50-shufflenet-v2_4xb16_cub.py']

model = dict(
    type='OverhaulFeatureDistillation',
    distiller=dict(
        _delete_=True,
        type='OFDAtPositionsDistiller',
        positions=_base_.model.distiller.positions,
        # The MGD stage weights (1/2^(K-k-1)) and loss factor.
        loss_weights=[1 / 4, 1 / 2, 1],
        mul_factor=1e4))

custom_hooks = []  # no matching
