# MGD-AMP between tiny MMPretrain ResNets (teacher ResNet-50 layout, student
# ResNet-18 layout, CIFAR stems) on folder-per-class images. The tests fill
# in data_root and the teacher checkpoint with --cfg-options.
_base_ = ['./kd_tiny_resnet.py']

teacher = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=50,
        stem_channels=4,
        base_channels=4,
        out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=3,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

# Student stage k: output of its last BasicBlock before the final ReLU (the
# block's second relu call); teacher: its last Bottleneck's third call.
student_last_block = [1, 1, 1, 1]
teacher_last_block = [2, 3, 5, 2]
student_channels = [4, 8, 16, 32]
teacher_channels = [16, 32, 64, 128]
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
loss_factor = 1e2

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='MatchingGuidedDistillation',
    data_preprocessor={{_base_.model.data_preprocessor}},
    architecture={{_base_.student}},
    teacher=teacher,
    teacher_ckpt=None,
    distiller=dict(
        type='MatchingGuidedDistiller',
        reducer=dict(type='AbsMaxPoolReducer'),
        positions=[
            dict(
                student=dict(
                    type='ModuleInputs',
                    source=f'backbone.layer{k + 1}.'
                    f'{student_last_block[k]}.relu',
                    record_idx=1,
                    channels=student_channels[k]),
                teacher=dict(
                    type='ModuleInputs',
                    source=f'backbone.layer{k + 1}.'
                    f'{teacher_last_block[k]}.relu',
                    record_idx=2,
                    channels=teacher_channels[k],
                    margin_bn=f'backbone.layer{k + 1}.'
                    f'{teacher_last_block[k]}.bn3'),
                loss_weight=stage_weights[k] / loss_factor) for k in range(4)
        ]))

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=1,
        num_samples=16,
        dataloader=dict(
            batch_size=8,
            num_workers=0,
            dataset=dict(
                type='mmpretrain.CustomDataset',
                data_root=None,
                pipeline={{_base_.pipeline}})))
]
