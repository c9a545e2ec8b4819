_base_ = ['./mgd-amp_resnet50-resnet18.py']

# MGD-AMP from an MMPretrain ResNet-50 (teacher) to a MobileNet-V1 1.0x
# (student), the paper's ImageNet setting.
#
# Teacher: the four stage outputs of mgd-amp_resnet50-resnet18.py (the
# residual sum of each stage's last Bottleneck, before its final ReLU;
# margins from that block's bn3): 256x56x56, 512x28x28, 1024x14x14,
# 2048x7x7 at 224 px.
#
# Student: the BN of the pointwise (1x1) conv of depthwise-separable blocks
# 3, 5, 11 and 13, before its ReLU, as in the reference: 128x56x56,
# 256x28x28, 512x14x14, 1024x7x7, the last block of each resolution.
# The ReLU that follows in the same ConvModule runs out of place
# (MatchingGuidedDistillation turns `inplace` off), so the recorded BN
# output stays pre-ReLU.
student_layers = [3, 5, 11, 13]
student_channels = [128, 256, 512, 1024]
teacher_last_block = [2, 3, 5, 2]  # ResNet-50: 3, 4, 6, 3 blocks
teacher_channels = [256, 512, 1024, 2048]
# The reference divides position k of K by 2^(K-k-1) and the summed loss by
# the loss factor (1e4 for 224 px inputs).
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
loss_factor = 1e4

model = dict(
    architecture=dict(
        _delete_=True,
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(type='MobileNetV1', widen_factor=1.0),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=1024,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    distiller=dict(positions=[
        dict(
            student=dict(
                type='ModuleOutputs',
                source=f'backbone.layer{student_layers[k]}.pointwise_conv.bn',
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
