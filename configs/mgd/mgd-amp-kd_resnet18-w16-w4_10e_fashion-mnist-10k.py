# MGD-AMP plus logit KD (the KD config's loss: MMRazor's KLDivergence at
# temperature 1.5) in the same distiller.
_base_ = ['./mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.5, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
