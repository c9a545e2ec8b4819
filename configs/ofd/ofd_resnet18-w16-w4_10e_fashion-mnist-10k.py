# OFD (A Comprehensive Overhaul of Feature Distillation) on Fashion-MNIST with
# MMRazor's own OverhaulFeatureDistillation, the feature baseline for MGD: same
# pair, schedule and stage weights. MMRazor takes the margins from the BN that
# the teacher recorder names, so both networks are recorded at the output of
# their last block's bn2 in each stage; MMPretrain adds the shortcut to it in
# place, so the record is the pre-ReLU stage output that MGD distils
# (tests/test_configs.py checks it); a 1x1 conv + BN widens the student's
# channels to the teacher's. OFDLoss divides by its default mul_factor, 1e3.
_base_ = ['../_base_/distill/resnet18-w16-w4_10e_fashion-mnist-10k.py']

student_channels = [4, 8, 16]
teacher_channels = [16, 32, 64]
stage_weights = [1 / 4, 1 / 2, 1]

model = dict(
    type='OverhaulFeatureDistillation',
    distiller=dict(
        type='OFDDistiller',
        student_recorders={
            f'stage{k}':
            dict(type='ModuleOutputs', source=f'backbone.layer{k + 1}.1.bn2')
            for k in range(3)
        },
        teacher_recorders={
            f'stage{k}':
            dict(type='ModuleOutputs', source=f'backbone.layer{k + 1}.1.bn2')
            for k in range(3)
        },
        distill_losses={
            f'loss_ofd{k}': dict(type='OFDLoss', loss_weight=stage_weights[k])
            for k in range(3)
        },
        connectors={
            **{
                f'ofd{k}_s':
                dict(
                    type='ConvModuleConnector',
                    in_channel=student_channels[k],
                    out_channel=teacher_channels[k],
                    norm_cfg=dict(type='BN'),
                    act_cfg=None)
                for k in range(3)
            },
            **{
                f'ofd{k}_t': dict(type='OFDTeacherConnector')
                for k in range(3)
            }
        },
        loss_forward_mappings={
            f'loss_ofd{k}':
            dict(
                s_feature=dict(
                    from_student=True,
                    recorder=f'stage{k}',
                    connector=f'ofd{k}_s'),
                t_feature=dict(
                    from_student=False,
                    recorder=f'stage{k}',
                    connector=f'ofd{k}_t'))
            for k in range(3)
        }))
