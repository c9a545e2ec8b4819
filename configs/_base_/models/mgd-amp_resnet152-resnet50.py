_base_ = ['./mgd-amp_resnet50-resnet18.py']

# MGD-AMP from an MMPretrain ResNet-152 (teacher) to a ResNet-50 (student).
#
# Both sides record the four stage outputs as in mgd-amp_resnet50-resnet18.py:
# the residual sum of each stage's last Bottleneck, the third input of its
# shared `relu` (record_idx 2), before the final ReLU; margins from the
# teacher block's bn3. Both have 256, 512, 1024 and 2048 channels, so every
# group holds one teacher channel: the matching is a channel permutation and
# the reducers all pass the matched channel through.
student_last_block = [2, 3, 5, 2]  # ResNet-50: 3, 4, 6, 3 blocks
teacher_last_block = [2, 7, 35, 2]  # ResNet-152: 3, 8, 36, 3 blocks
student_channels = [256, 512, 1024, 2048]
teacher_channels = [256, 512, 1024, 2048]
# The reference divides position k of K by 2^(K-k-1) and the summed loss by
# the loss factor (1e4 for 224 px inputs).
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
loss_factor = 1e4

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet152_8xb32_in1k_20210901-4d7582fa.pth'  # noqa: E501

model = dict(
    architecture=dict(backbone=dict(depth=50), head=dict(in_channels=2048)),
    teacher=dict(backbone=dict(depth=152)),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(positions=[
        dict(
            student=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 1}.{student_last_block[k]}.relu',
                record_idx=2,
                channels=student_channels[k]),
            teacher=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 1}.{teacher_last_block[k]}.relu',
                record_idx=2,
                channels=teacher_channels[k],
                margin_bn=f'backbone.layer{k + 1}.'
                f'{teacher_last_block[k]}.bn3'),
            loss_weight=stage_weights[k] / loss_factor) for k in range(4)
    ]))
