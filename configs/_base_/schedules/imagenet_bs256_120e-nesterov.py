# The paper's ImageNet-1k schedule (the reference trains ResNet-50 ->
# MobileNet-V1 with it, and its base models too): 120 epochs, batch 256 in
# total, SGD with Nesterov momentum 0.9, lr 0.1, weight decay 1e-4, a linear
# warm-up and step decays. The paper does not give the warm-up length or the
# decay epochs; here the warm-up ramps from 0.01 to 0.1 over the first 5
# epochs (per iteration) and the rate drops 10x at epochs 30, 60 and 90.
# The student's BatchNorm connectors of a distillation config are trained
# with these same settings.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1),
]

train_cfg = dict(by_epoch=True, max_epochs=120, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# The lr above is for 256 images per step (8 GPUs x 32); on another batch
# size add `--cfg-options auto_scale_lr.enable=True`.
auto_scale_lr = dict(base_batch_size=256)
