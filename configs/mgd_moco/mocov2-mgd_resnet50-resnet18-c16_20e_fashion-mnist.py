# MoCo-v2 + MGD-AMP on Fashion-MNIST: the MoCo-v2 ResNet-50 (16 base
# channels) pretrained by mocov2_resnet50-c16_20e_fashion-mnist.py teaches
# the query backbone of a MoCo-v2 ResNet-18 (16 base channels; stage
# channels 16, 32, 64, 128 <- 64, 128, 256, 512). The student's recipe;
# matching at log-spaced epochs on 5000 training images. Positions as in
# configs/_base_/models/mocov2-mgd_resnet50-resnet18.py.
_base_ = ['./mocov2_resnet18-c16_20e_fashion-mnist.py']

teacher_ckpt = 'work_dirs/mocov2_resnet50-c16_20e_fashion-mnist/epoch_20.pth'
student_last_block = [1, 1, 1, 1]
teacher_last_block = [2, 3, 5, 2]
student_channels = [16, 32, 64, 128]
teacher_channels = [64, 128, 256, 512]
stage_weights = [1 / 8, 1 / 4, 1 / 2, 1]
# The reference's 1e4 is for 224 px; 28 px inputs have 64x fewer positions.
loss_factor = 1e4 / 64

model = dict(
    type='MoCoMGD',
    teacher_backbone=dict(
        type='ResNet_CIFAR',
        depth=50,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        zero_init_residual=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='MatchingGuidedDistiller',
        reducer=dict(type='AbsMaxPoolReducer'),
        positions=dict(
            student=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.{student_last_block[k]}.relu',
                    record_idx=1,
                    channels=student_channels[k]) for k in range(4)
            ],
            teacher=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.{teacher_last_block[k]}.relu',
                    record_idx=2,
                    channels=teacher_channels[k],
                    margin_bn=f'layer{k + 1}.{teacher_last_block[k]}.bn3')
                for k in range(4)
            ],
            loss_weight=stage_weights,
            loss_factor=loss_factor)))

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        # round(20 ** (k / 10)): epochs 1, 2, 3, 4, 6, 8, 11, 15.
        epochs='log',
        num_samples=5000,
        dataloader={{_base_.matching_dataloader}})
]
