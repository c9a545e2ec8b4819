# Logit KD on Fashion-MNIST, the baseline for MGD: MMRazor's
# SingleTeacherDistill with KLDivergence (temperature 1.5, scaled by tau^2)
# added to the student's cross-entropy. Same pair and schedule as the MGD
# configs.
_base_ = ['../_base_/distill/resnet18-w16-w4_10e_fashion-mnist-10k.py']

model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
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
