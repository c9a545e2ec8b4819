# OFD alone, CUB-200, ResNet-50 -> MobileNet-V2, for comparison with MGD.
# OFD: Heo et al., "A Comprehensive Overhaul of Feature Distillation",
# ICCV 2019, with MMRazor's OverhaulFeatureDistillation, OFDTeacherConnector
# and OFDLoss. Everything but the distillation comes from the MGD config (same
# teacher and checkpoint, student, data and schedule), and OFD distils at the
# MGD positions:
# - student: the MGD student recorders, through OFD's trainable 1x1 conv +
#   BN connector up to the teacher's width;
# - teacher: MMRazor's OFD reads the feature and its margins from a teacher
#   BatchNorm, so the recorder is the MGD margin BN (bn3 of the stage's last
#   Bottleneck). MMPretrain's Bottleneck adds the shortcut to bn3's output in
#   place, so the recorded tensor is the pre-ReLU stage output, the MGD
#   teacher feature (tests/test_configs.py checks this).
# Loss weights: the MGD stage weights (1/2^(K-k-1)) and loss factor (1e4).
_base_ = ['./mgd-amp_resnet50-mobilenet-v2_4xb16_cub.py']

positions = _base_.model.distiller.positions

model = dict(
    type='OverhaulFeatureDistillation',
    distiller=dict(
        _delete_=True,
        type='OFDDistiller',
        student_recorders={
            f'ofd{k}':
            dict(type=p['student']['type'], source=p['student']['source'])
            for k, p in enumerate(positions)
        },
        teacher_recorders={
            f'ofd{k}':
            dict(type='ModuleOutputs', source=p['teacher']['margin_bn'])
            for k, p in enumerate(positions)
        },
        connectors={
            **{
                f'ofd{k}_s':
                dict(
                    type='ConvModuleConnector',
                    in_channel=p['student']['channels'],
                    out_channel=p['teacher']['channels'],
                    norm_cfg=dict(type='BN'),
                    act_cfg=None)
                for k, p in enumerate(positions)
            },
            **{
                f'ofd{k}_t': dict(type='OFDTeacherConnector')
                for k in range(len(positions))
            },
        },
        distill_losses={
            f'loss_ofd{k}':
            dict(
                type='OFDLoss',
                loss_weight=2**(k + 1 - len(positions)),
                mul_factor=1e4)
            for k in range(len(positions))
        },
        loss_forward_mappings={
            f'loss_ofd{k}':
            dict(
                s_feature=dict(
                    from_student=True,
                    recorder=f'ofd{k}',
                    record_idx=p['student'].get('record_idx', 0),
                    # A ModuleInputs record is the tuple of inputs.
                    data_idx=0 if 'Inputs' in p['student']['type'] else None,
                    connector=f'ofd{k}_s'),
                t_feature=dict(
                    from_student=False,
                    recorder=f'ofd{k}',
                    connector=f'ofd{k}_t'))
            for k, p in enumerate(positions)
        }))

custom_hooks = []  # no matching
