# Linear evaluation of a Fashion-MNIST MoCo-v2 (+ MGD) pretraining of the
# 4-base-channel ResNet-18: frozen backbone, a linear head trained on the
# labels of the pretraining's 10k training images (flips) for 10 epochs
# (MoCo's linear protocol: SGD, no weight decay, steps), evaluated on the
# 10k test images (or, tools/run_main_job.py-style, on `heldout_dataset`).
# The learning rate was chosen on the held-out images: 1.0 gave 69.31 /
# 77.76 (this width / the teacher's, seed-0 pretrainings), MoCo's 30 gave
# 68.11 / 77.43, 0.1 gave 66.84 / 75.47 (docs/diagnostics). The backbone is
# the `backbone.*` of the pretraining checkpoint (the student's query
# backbone); by default the last checkpoint of the MGD run, else
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_N.pth
_base_ = [
    '../../_base_/models/resnet18-cifar-3stage_fashion-mnist.py',
    '../../_base_/datasets/fashion-mnist-10k_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]

width = 4
pretrained = 'work_dirs/mocov2-mgd_resnet18-w16-w4_10e_fashion-mnist-10k/epoch_10.pth'  # noqa: E501
model = dict(
    backbone=dict(
        stem_channels=width,
        base_channels=width,
        frozen_stages=3,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=4 * width))

max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1., momentum=0.9, weight_decay=0.))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[6, 8], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
