# Held-out diagnostic (docs/diagnostics/README.md): validates on the
# held-out training images, never on the test split.
# Diagnostic: the same recipe with a width-8 student (8, 16, 32 channels).
_base_ = ['../../configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']
student_channels = [8, 16, 32]
model = dict(
    architecture=dict(
        backbone=dict(stem_channels=8, base_channels=8),
        head=dict(in_channels=32)),
    distiller=dict(positions=[
        dict(
            student=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 1}.1.relu',
                record_idx=1,
                channels=student_channels[k]),
            teacher=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 1}.1.relu',
                record_idx=1,
                channels=_base_.teacher_channels[k],
                margin_bn=f'backbone.layer{k + 1}.1.bn2'),
            loss_weight=_base_.stage_weights[k] / _base_.loss_factor)
        for k in range(3)
    ]))
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.heldout_dataset))
