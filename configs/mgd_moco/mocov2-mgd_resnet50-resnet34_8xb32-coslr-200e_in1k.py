# MoCo-v2 + MGD-AMP on ImageNet-1k: the frozen MoCo-v2 ResNet-50 backbone
# teaches the query backbone of a MoCo-v2 ResNet-34. The ResNet-18 recipe
# with a ResNet-34 student (3, 4, 6, 3 BasicBlocks).
_base_ = ['./mocov2-mgd_resnet50-resnet18_8xb32-coslr-200e_in1k.py']

student_last_block = [2, 3, 5, 2]
student_channels = [64, 128, 256, 512]

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
