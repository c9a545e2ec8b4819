# What every distillation config of the Fashion-MNIST recipe shares: the
# student (configs/fashion_mnist/resnet18-w4_10e_fashion-mnist-10k.py, whose
# data and schedule it keeps) learns from the teacher trained by
# configs/fashion_mnist/resnet18-w16_10e_fashion-mnist-10k.py. A config adds
# the algorithm type and its distiller.
_base_ = ['../../fashion_mnist/resnet18-w4_10e_fashion-mnist-10k.py']

teacher_ckpt = 'work_dirs/resnet18-w16_10e_fashion-mnist-10k/epoch_10.pth'
student = dict(_base_.model, _scope_='mmpretrain')
teacher = dict(
    student,
    backbone=dict(student['backbone'], stem_channels=16, base_channels=16),
    head=dict(student['head'], in_channels=64))

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=[72.94], std=[90.02]),
    architecture=student,
    teacher=teacher,
    teacher_ckpt=teacher_ckpt)

find_unused_parameters = True
# Validates (and tests) the student; also reports the teacher.
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
