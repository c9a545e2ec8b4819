# MoCo-v2 ResNet-18 alone on ImageNet-1k: the student of
# mocov2-mgd_resnet50-resnet18_8xb32-coslr-200e_in1k.py without the teacher,
# the same recipe (the baseline of the MGD run). ConfigurableMoCo is
# MMPretrain's MoCo with the ablation options of seed 001:
#   --cfg-options model.shuffle_bn=False        plain BN instead of SBN
#   --cfg-options model.encoder_momentum=0.9    MoCo's m (0, 0.9, 0.999)
#   --cfg-options model.queue_len=16384         the queue length
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_mocov2.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_coslr_200e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

model = dict(
    type='ConfigurableMoCo',
    queue_len=65536,
    feat_dim=128,
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
        temperature=0.2))

# only keeps the latest 3 checkpoints
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
