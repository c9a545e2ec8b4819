# MGD-AMP on Fashion-MNIST: the CIFAR-stem ResNet-50 teacher trained by
# configs/fashion_mnist/resnet50-c16_fashion-mnist.py teaches a CIFAR-stem
# ResNet-18 (stage channels 16, 32, 64, 128 <- 64, 128, 256, 512). Same
# schedule as the teacher; matching before every epoch on 10k training
# images. Positions, margins and stage weights: the ResNet-50 -> ResNet-18
# base; only the widths differ.
_base_ = [
    '../_base_/datasets/fashion-mnist_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/mgd-amp_resnet50-resnet18.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)

teacher_ckpt = 'work_dirs/resnet50-c16_fashion-mnist/epoch_20.pth'
# 28 px inputs: the reference's 1e4 is for 224 px (64x more positions).
loss_factor = 1e4 / 64
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
teacher_last_block = [2, 3, 5, 2]
student_channels = [16, 32, 64, 128]
teacher_channels = [64, 128, 256, 512]

model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='ImgDataPreprocessor',
        mean=[72.94],
        std=[90.02]),
    architecture=dict(
        backbone=dict(
            type='ResNet_CIFAR',
            in_channels=1,
            stem_channels=16,
            base_channels=16),
        head=dict(num_classes=10, in_channels=128, topk=(1, ))),
    teacher=dict(
        backbone=dict(
            type='ResNet_CIFAR',
            in_channels=1,
            stem_channels=16,
            base_channels=16),
        head=dict(num_classes=10, in_channels=512, topk=(1, ))),
    teacher_ckpt=teacher_ckpt,
    # The base's positions with these widths.
    distiller=dict(positions=[
        dict(
            student=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 1}.1.relu',
                record_idx=1,
                channels=student_channels[k]),
            teacher=dict(
                type='ModuleInputs',
                source=f'backbone.layer{k + 1}.{teacher_last_block[k]}.relu',
                record_idx=2,
                channels=teacher_channels[k],
                margin_bn=f'backbone.layer{k + 1}.{teacher_last_block[k]}.bn3'),
            loss_weight=stage_weights[k] / loss_factor) for k in range(4)
    ]))

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=1,
        num_samples=10000,
        dataloader=dict(
            batch_size=256,
            num_workers=2,
            dataset=dict(
                type='FashionMNIST',
                data_root='data/fashion-mnist',
                split='train',
                download=False,
                # Deterministic, validation-style: no augmentation.
                pipeline=[dict(type='PackInputs')])))
]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, T_max=20)
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
test_cfg = dict()
