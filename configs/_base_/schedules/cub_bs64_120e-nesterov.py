# The paper's CUB-200-2011 transfer schedule (the reference's CUB script):
# 120 epochs, batch 64 in total, lr 0.01, from ImageNet-pretrained networks.
# The script's other settings are those of its ImageNet recipe: SGD with
# Nesterov momentum 0.9, weight decay 1e-4, step decays (10x at epochs 30,
# 60 and 90; the paper does not list them); it has no warm-up here.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4))

param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)

train_cfg = dict(by_epoch=True, max_epochs=120, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# The lr above is for 64 images per step (4 GPUs x 16, as the reference ran
# it); on another batch size add `--cfg-options auto_scale_lr.enable=True`.
auto_scale_lr = dict(base_batch_size=64)
