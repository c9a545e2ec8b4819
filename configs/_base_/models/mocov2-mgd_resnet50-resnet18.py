# MoCo-v2 + MGD-AMP: a frozen MoCo-v2 ResNet-50 backbone (the teacher)
# distils into the query backbone of a MoCo-v2 ResNet-18 (the student).
#
# Student: MMPretrain's MoCo-v2 recipe (queue 65536, 128-d keys, m = 0.999,
# temperature 0.2, shuffled BN) with ResNet-18 and a 512-512-128 MLP neck.
# Teacher: the backbone.* weights of MMPretrain's MoCo-v2 ResNet-50
# (200 epochs); the checkpoint's neck, momentum encoder and queue are not
# read.
#
# Four positions, one per stage, on the query view: the stage output after
# the residual add of its last block, before that block's final ReLU
# (docs/feature_positions.md). Recorder sources and margin BatchNorms are
# named inside the backbones (`layer1.1.relu`, not `backbone.layer1...`).
# The k-th student position is distilled from the k-th teacher position.
student_last_block = [1, 1, 1, 1]  # ResNet-18: 2, 2, 2, 2 blocks
teacher_last_block = [2, 3, 5, 2]  # ResNet-50: 3, 4, 6, 3 blocks
student_channels = [64, 128, 256, 512]
teacher_channels = [256, 512, 1024, 2048]
# The reference divides position k of K by 2^(K-k-1) and the summed loss by
# the loss factor (1e4 for 224 px; the seed notes 1e2 may work better:
# --cfg-options model.distiller.positions.loss_factor=100).
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
loss_factor = 1e4
reducer = 'AbsMaxPoolReducer'

teacher_ckpt = 'https://download.openmmlab.com/mmselfsup/1.x/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k/mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-b6d23c86.pth'  # noqa: E501

model = dict(
    type='MoCoMGD',
    queue_len=65536,
    feat_dim=128,
    # MoCo's m: key = m * key + (1 - m) * query.
    encoder_momentum=0.999,
    shuffle_bn=True,
    backbone=dict(
        type='ResNet',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2),
    teacher_backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='MatchingGuidedDistiller',
        reducer=dict(type=reducer),
        positions=dict(
            student=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.{student_last_block[k]}.relu',
                    record_idx=1,
                    channels=student_channels[k]) for k in range(4)
            ],
            teacher=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.{teacher_last_block[k]}.relu',
                    record_idx=2,
                    channels=teacher_channels[k],
                    margin_bn=f'layer{k + 1}.{teacher_last_block[k]}.bn3')
                for k in range(4)
            ],
            loss_weight=stage_weights,
            loss_factor=loss_factor)))
