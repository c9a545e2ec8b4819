# MoCo-v2 + MGD-AMP on Fashion-MNIST: the MoCo-v2 teacher pretrained by
# mocov2_resnet18-w16_10e_fashion-mnist-10k.py teaches the query backbone of
# the student MoCo-v2 (mocov2_resnet18-w4_10e_fashion-mnist-10k.py, whose
# recipe this keeps). The classification recipe's MGD settings
# (configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py): one
# position per stage (16, 32, 64 -> 4, 8, 16 channels), stage weights 1/4,
# 1/2, 1, loss factor 1e3, matching before every epoch on 2000 images.
_base_ = ['./mocov2_resnet18-w4_10e_fashion-mnist-10k.py']

teacher_ckpt = 'work_dirs/mocov2_resnet18-w16_10e_fashion-mnist-10k/epoch_10.pth'  # noqa: E501
student_channels = [4, 8, 16]
teacher_channels = [16, 32, 64]
stage_weights = [1 / 4, 1 / 2, 1]
loss_factor = 1e3

model = dict(
    type='MoCoMGD',
    teacher_backbone=dict(
        _base_.model.backbone, stem_channels=16, base_channels=16),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='MatchingGuidedDistiller',
        reducer=dict(type='AbsMaxPoolReducer'),
        # Named inside the backbones: the stage output after the residual
        # add of its last BasicBlock, before that block's final ReLU.
        positions=dict(
            student=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.1.relu',
                    record_idx=1,
                    channels=student_channels[k]) for k in range(3)
            ],
            teacher=[
                dict(
                    type='ModuleInputs',
                    source=f'layer{k + 1}.1.relu',
                    record_idx=1,
                    channels=teacher_channels[k],
                    margin_bn=f'layer{k + 1}.1.bn2') for k in range(3)
            ],
            loss_weight=stage_weights,
            loss_factor=loss_factor)))

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=1,
        num_samples=2000,
        dataloader={{_base_.matching_dataloader}})
]
