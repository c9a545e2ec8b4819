_base_ = ['./mgd-amp_resnet50-resnet18.py']

# MGD-AMP from an MMPretrain ResNet-50 (teacher) to a ShuffleNet-V2 1.0x
# (student).
#
# Three positions, the ends of ShuffleNet-V2 stages 2, 3 and 4 (MMPretrain's
# `backbone.layers.0`, `.1`, `.2`), at 28x28, 14x14 and 7x7 for 224 px. The
# ShuffleNet stem (24 channels) is not distilled, as in the reference: its
# only pre-ReLU tensor is the conv1 BN output at 112x112, where ResNet-50 has
# its own stem (64 channels) but none of its four stage positions (layer1
# runs at 56x56); the 24x56x56 max-pooled stem is post-ReLU.
#
# Teacher: the matching ResNet-50 stages 2-4 (layer2..layer4) as in
# mgd-amp_resnet50-resnet18.py: the residual sum of the stage's last
# Bottleneck, recorded as the third input of its shared `relu` (record_idx
# 2), before the final ReLU; 512x28x28, 1024x14x14, 2048x7x7. Margins (one
# per TEACHER channel) come from that block's bn3, the BN before the ReLU.
#
# Student: the stage output of MMPretrain's ShuffleNetV2 is NOT pre-ReLU. A
# block's output is channel_shuffle(cat(x1, branch2(x2)), 2), and the last
# ConvModule of branch2 (1x1 conv + BN) has act_cfg=ReLU; x1 is the untouched
# half of the block input, itself the (post-ReLU) output of earlier blocks.
# So every channel of the 116/232/464-channel stage output is >= 0 and no
# module input or output holds it before the ReLU. The pre-ReLU feature at
# the end of each stage is the output of the last block's `branch2.2.bn`
# (recorded with ModuleOutputs, one call, record_idx 0): 58, 116 and 232
# channels, half the stage width. Its ReLU is exactly the odd channels of the
# stage output (the shuffle interleaves x1 and branch2), i.e. the half that
# the stage's last block computes. The spec's 116/232/464 channels are the
# full, post-ReLU stage outputs; to use them instead, record ModuleOutputs of
# `backbone.layers.{0,1,2}` and set the channels accordingly (the student
# feature then never goes below 0).
#
# The recorder keeps a reference to the BN output, and the ReLU that follows
# it in the same mmcv ConvModule is built in place: this relies on
# MatchingGuidedDistillation turning off `inplace` on every activation
# module, including those nested in ConvModules.
student_last_block = [3, 7, 3]  # ShuffleNet-V2 stages 2-4: 4, 8, 4 blocks
teacher_last_block = [3, 5, 2]  # ResNet-50 layer2..layer4: 4, 6, 3 blocks
student_channels = [58, 116, 232]
teacher_channels = [512, 1024, 2048]
# The reference divides position k of K by 2^(K-k-1) (K = 3 here) and the
# summed loss by the loss factor (1e4 for 224 px inputs).
stage_weights = [1 / 4, 1 / 2, 1]
loss_factor = 1e4

model = dict(
    architecture=dict(
        _delete_=True,
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(type='ShuffleNetV2', widen_factor=1.0),
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
                source=f'backbone.layers.{k}.{student_last_block[k]}.'
                'branch2.2.bn',
                channels=student_channels[k]),
            teacher=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 2}.{teacher_last_block[k]}.relu',
                record_idx=2,
                channels=teacher_channels[k],
                margin_bn=f'backbone.layer{k + 2}.'
                f'{teacher_last_block[k]}.bn3'),
            loss_weight=stage_weights[k] / loss_factor) for k in range(3)
    ]))
