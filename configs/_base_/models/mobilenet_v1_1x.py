# MobileNet-V1 1.0x (mgd_plugin's MMPretrain backbone `MobileNetV1`), the
# student of the paper's ImageNet recipe. The config that uses it imports
# mgd_plugin (custom_imports).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MobileNetV1', widen_factor=1.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
