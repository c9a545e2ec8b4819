# KD alone, ImageNet-1k, ResNet-50 -> MobileNet-V1, for comparison with MGD.
# Everything but the distillation loss comes from the MGD config (same
# teacher and checkpoint, student, data and schedule). Logit KD as in the MGD
# reference: KL divergence at temperature 1.5, times tau^2 (MMRazor's
# KLDivergence multiplies by tau^2).
_base_ = ['./mgd-amp_resnet50-mobilenet-v1_8xb32_in1k.py']

model = dict(
    type='SingleTeacherDistill',
    distiller=dict(
        _delete_=True,
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.5, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))

custom_hooks = []  # no matching
