_base_ = ['./mgd-amp_resnet50-resnet18.py']

# MGD-AMP from an MMPretrain ResNet-50 (teacher) to a MobileNet-V2 1.0x
# (student).
#
# Teacher: four positions, one per stage, as in mgd-amp_resnet50-resnet18.py:
# the stage output after the residual add of its last Bottleneck, before
# that block's final ReLU. The block calls its shared `relu` module three
# times; its inputs are recorded and the third call (record_idx 2) is the one
# after the add. Margins come from that block's bn3, the BN before the ReLU.
# Sizes at 224 px: 256x56x56, 512x28x28, 1024x14x14, 2048x7x7.
#
# Student: the expansion 1x1 conv + BN, before its ReLU6, of inverted-residual
# blocks 4, 7, 11 and 17 (1-based over the 17 blocks). MMPretrain groups the
# blocks in layer1..layer7 of 1, 2, 3, 4, 3, 3, 1 blocks, so these are the
# FIRST block of layer3, layer4, layer5 and layer7; the expansion ConvModule
# is `conv.0` and its BN `conv.0.bn` (recorded with ModuleOutputs, one call,
# record_idx 0). Sizes at 224 px: 144x56x56, 192x28x28, 384x14x14, 960x7x7.
# Blocks 4 and 7 start stride-2 stages (layer3, layer4), but their stride is
# in the depthwise conv (`conv.1`), AFTER the expansion conv: the expansion
# still runs at the resolution of the previous stage (56 and 28), which is
# exactly the resolution of ResNet-50 layer1 and layer2. Block 11 starts the
# stride-1 layer5 (14x14) and block 17 the stride-1 layer7 (7x7, after the
# stride-2 layer6). So the four spec positions line up with the four
# ResNet-50 stages one to one.
#
# The recorder keeps a reference to the BN output, and the ReLU6 that follows
# it in the same mmcv ConvModule is built in place: this relies on
# MatchingGuidedDistillation turning off `inplace` on every activation
# module, including those nested in ConvModules.
teacher_last_block = [2, 3, 5, 2]  # ResNet-50: 3, 4, 6, 3 blocks
student_layers = [3, 4, 5, 7]  # blocks 4, 7, 11, 17 = layerX.0
student_channels = [144, 192, 384, 960]
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
        backbone=dict(type='MobileNetV2', widen_factor=1.0),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=1280,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    distiller=dict(positions=[
        dict(
            student=dict(
                type='ModuleOutputs',
                source=f'backbone.layer{student_layers[k]}.0.conv.0.bn',
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
