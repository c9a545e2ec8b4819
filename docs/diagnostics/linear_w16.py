# Held-out diagnostic (docs/diagnostics/README.md): the linear evaluation of
# a width-16 MoCo-v2 backbone, validated on the held-out training images.
_base_ = [
    '../../configs/mgd_moco/benchmarks/resnet18-w16_linear-10e_fashion-mnist-10k.py'  # noqa: E501
]
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.heldout_dataset))
