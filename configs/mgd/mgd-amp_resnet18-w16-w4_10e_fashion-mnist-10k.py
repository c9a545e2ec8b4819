# MGD-AMP on Fashion-MNIST: the ResNet-18 w16 teacher teaches the ResNet-18 w4
# student (stages of 16, 32, 64 -> 4, 8, 16 channels: groups of four teacher
# channels) with the student's schedule. One position per stage: the stage
# output after the residual add of its last BasicBlock, before the block's
# final ReLU (the second call of its shared `relu`, record_idx 1); margins from
# that block's bn2 in the teacher. Matching before every epoch on 2000 training
# images.
_base_ = ['../_base_/distill/resnet18-w16-w4_10e_fashion-mnist-10k.py']

student_channels = [4, 8, 16]
teacher_channels = [16, 32, 64]
# The reference divides position k of K by 2^(K-k-1) and the summed loss by
# a loss factor (1e4 for 224 px ImageNet inputs).
stage_weights = [1 / 4, 1 / 2, 1]
loss_factor = 1e3

model = dict(
    type='MatchingGuidedDistillation',
    distiller=dict(
        type='MatchingGuidedDistiller',
        reducer=dict(type='AbsMaxPoolReducer'),
        positions=[
            dict(
                student=dict(
                    type='ModuleInputs',
                    source=f'backbone.layer{k + 1}.1.relu',
                    record_idx=1,
                    channels=student_channels[k]),
                teacher=dict(
                    type='ModuleInputs',
                    source=f'backbone.layer{k + 1}.1.relu',
                    record_idx=1,
                    channels=teacher_channels[k],
                    margin_bn=f'backbone.layer{k + 1}.1.bn2'),
                loss_weight=stage_weights[k] / loss_factor) for k in range(3)
        ]))

custom_hooks = [
    dict(
        type='MatchingUpdateHook',
        interval=1,
        num_samples=2000,
        dataloader=dict(
            batch_size=256,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            # The training images without augmentation, in a fixed order.
            dataset=_base_.train_images_no_aug))
]
