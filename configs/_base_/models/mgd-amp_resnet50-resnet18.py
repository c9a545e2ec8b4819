# MGD-AMP from an MMPretrain ResNet-50 (teacher) to a ResNet-18 (student).
#
# Four positions, one per stage: the stage output after the residual add of
# its last block, before that block's final ReLU. MMPretrain blocks call one
# shared `relu` module several times; its inputs are recorded and the last
# call is the one after the add (record_idx 1 in a BasicBlock, 2 in a
# Bottleneck). MatchingGuidedDistillation turns in-place ReLUs off so that
# the recorded tensors stay pre-ReLU. Margins come from the teacher BN
# before that ReLU (bn3 of the last Bottleneck).
student_last_block = [1, 1, 1, 1]  # ResNet-18: 2, 2, 2, 2 blocks
teacher_last_block = [2, 3, 5, 2]  # ResNet-50: 3, 4, 6, 3 blocks
student_channels = [64, 128, 256, 512]
teacher_channels = [256, 512, 1024, 2048]
# The reference divides position k of K by 2^(K-k-1) and the summed loss by
# the loss factor (1e4 for 224 px inputs).
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
loss_factor = 1e4

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501

model = dict(
    _scope_='mmrazor',
    type='MatchingGuidedDistillation',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='ResNet', depth=18, num_stages=4, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=512,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    teacher=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='ResNet', depth=50, num_stages=4, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=2048,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='MatchingGuidedDistiller',
        # The reducer of every position (none names its own): switch them all
        # with --cfg-options model.distiller.reducer.type=RandomDropReducer
        # (or MaxPoolReducer, SparseMatchReducer).
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
