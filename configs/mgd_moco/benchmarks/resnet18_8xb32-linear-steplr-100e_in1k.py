# Linear evaluation of a MoCo-v2 (+ MGD) ResNet-18 on ImageNet-1k, as
# MMPretrain's MoCo-v2 benchmark: frozen backbone, a linear head trained
# with SGD lr 30 for 100 epochs.
#
# The backbone is the `backbone.*` part of a pretraining checkpoint: the
# student's query backbone (a MoCoMGD checkpoint keeps its teacher under
# `teacher_backbone.*`, which this prefix does not take). By default the
# last checkpoint of the MGD pretraining; for another one:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_N.pth
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/schedules/imagenet_sgd_steplr_100e.py',
    'mmpretrain::_base_/default_runtime.py',
]

pretrained = 'work_dirs/mocov2-mgd_resnet50-resnet18_8xb32-coslr-200e_in1k/epoch_200.pth'  # noqa: E501

model = dict(
    backbone=dict(
        frozen_stages=4,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')))

# optimizer
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))

# runtime settings
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
