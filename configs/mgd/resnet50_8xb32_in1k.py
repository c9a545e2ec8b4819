# MMPretrain's ResNet-50, the student of the ResNet-152 -> ResNet-50 setting,
# trained alone on the paper's ImageNet schedule (120 epochs, 8 GPUs x 32
# images, SGD Nesterov lr 0.1, warm-up, steps, wd 1e-4): the baseline of the
# KD, OFD and MGD configs that teach it, with the same network, data and
# schedule.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_bs256_120e-nesterov.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mgd_plugin'], allow_failed_imports=False)
