# Logit KD as in the MGD reference, for MMRazor's ConfigurableDistiller:
# KL divergence between the student's and the teacher's `head.fc` outputs at
# temperature 1.5, times tau^2 (MMRazor's KLDivergence does that), weight 1,
# added to the student's cross-entropy. Configs unpack it into their
# distiller: `distiller=dict(..., **_base_.logit_kd)`.
logit_kd = dict(
    student_recorders=dict(
        logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(
        loss_kd=dict(type='KLDivergence', tau=1.5, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
