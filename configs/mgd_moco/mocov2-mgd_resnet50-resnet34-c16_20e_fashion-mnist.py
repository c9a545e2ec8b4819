# MoCo-v2 + MGD-AMP on Fashion-MNIST with a CIFAR-stem ResNet-34 student
# (3, 4, 6, 3 BasicBlocks); see
# mocov2-mgd_resnet50-resnet18-c16_20e_fashion-mnist.py.
_base_ = ['./mocov2-mgd_resnet50-resnet18-c16_20e_fashion-mnist.py']

student_last_block = [2, 3, 5, 2]
student_channels = [16, 32, 64, 128]

model = dict(
    backbone=dict(depth=34),
    distiller=dict(
        positions=dict(student=[
            dict(
                type='ModuleInputs',
                source=f'layer{k + 1}.{student_last_block[k]}.relu',
                record_idx=1,
                channels=student_channels[k]) for k in range(4)
        ])))
