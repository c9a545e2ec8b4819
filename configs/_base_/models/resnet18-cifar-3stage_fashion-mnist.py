# A CIFAR-stem ResNet-18 (3x3 stem, no max pool) with three stages for
# 28x28 grey images: stage outputs at 28, 14 and 7 px with base_channels,
# 2x and 4x as many channels. A config sets the width (stem_channels,
# base_channels, head in_channels = 4 x base_channels).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
