# Held-out diagnostic (docs/diagnostics/README.md): validates on the
# held-out training images, never on the test split.
_base_ = ['../../configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.heldout_dataset))
