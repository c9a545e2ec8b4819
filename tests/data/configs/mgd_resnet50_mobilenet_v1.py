# MGD-AMP from an MMPretrain ResNet-50 (teacher) to the plugin's MobileNet-V1
# 1.0x (student), the MGD paper's ImageNet pair, for the position tests. The
# teacher positions are those of mgd-amp_resnet50-resnet18.py.
#
# Student: the pointwise 1x1 conv + BN, before its ReLU, of the last
# depthwise-separable block at each stride: blocks 3, 5, 11 and 13
# (`backbone.layerK.pointwise_conv.bn`, one call, ModuleOutputs). Sizes at
# 224 px: 128x56x56, 256x28x28, 512x14x14, 1024x7x7, the same as the
# ResNet-50 stages.
_base_ = ['../../../configs/_base_/models/mgd-amp_resnet50-resnet18.py']

custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

teacher_last_block = [2, 3, 5, 2]  # ResNet-50: 3, 4, 6, 3 blocks
student_layers = [3, 5, 11, 13]
student_channels = [128, 256, 512, 1024]
teacher_channels = [256, 512, 1024, 2048]
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
