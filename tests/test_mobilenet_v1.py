"""The MobileNet-V1 backbone: layout, arguments, registry, training."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from mmrazor.registry import MODELS as RAZOR_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import REPO_ROOT, save_model_checkpoint, write_image_folder
from mgd_plugin.models.backbones import MobileNetV1

# The 1.0x layout of the paper (Howard et al. 2017, table 1): output
# channels and total stride after each of the 13 blocks.
CHANNELS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
STRIDES = [2, 4, 4, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32]


def images(size, batch=1, seed=0):
    return torch.randn(
        batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def image_loader(root):
    """Batches of the six tiny images of ``root``, in a fixed order."""
    init_default_scope('mmpretrain')
    return Runner.build_dataloader(
        dict(
            batch_size=6,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='CustomDataset',
                data_root=root,
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='PackInputs')
                ])))


@pytest.mark.parametrize('out_indices', [(12, ), tuple(range(13)), (5, 0)])
@torch.no_grad()
def test_output_shapes_at_224(out_indices):
    model = MobileNetV1(out_indices=out_indices).eval()
    outs = model(images(224))
    assert isinstance(outs, tuple) and len(outs) == len(out_indices)
    for out, index in zip(outs, out_indices):
        size = 224 // STRIDES[index]
        assert tuple(out.shape) == (1, CHANNELS[index], size, size), index


def test_layout_and_module_names():
    model = MobileNetV1()
    assert model.conv1.conv.stride == (2, 2)
    assert model.conv1.conv.kernel_size == (3, 3)
    assert model.conv1.bn.num_features == 32
    assert isinstance(model.conv1.activate, torch.nn.ReLU)
    assert model.out_channels == CHANNELS
    in_channels = 32
    for k in range(13):
        block = getattr(model, f'layer{k + 1}')
        dw, pw = block.depthwise_conv, block.pointwise_conv
        stride = 2 if k in (1, 3, 5, 11) else 1
        assert dw.conv.groups == dw.conv.in_channels == in_channels
        assert dw.conv.kernel_size == (3, 3)
        assert dw.conv.stride == (stride, stride)
        assert pw.conv.kernel_size == (1, 1)
        assert pw.conv.out_channels == CHANNELS[k]
        for conv_module in (dw, pw):
            assert isinstance(conv_module.bn, torch.nn.BatchNorm2d)
            assert isinstance(conv_module.activate, torch.nn.ReLU)
            assert conv_module.conv.bias is None  # the BN has the bias
        in_channels = CHANNELS[k]
    assert not hasattr(model, 'layer14')


def _expected_parameters(stem, channels):
    # conv weights + BN weight and bias, counted from the layout alone.
    count = 3 * 3 * 3 * stem + 2 * stem
    in_channels = stem
    for out_channels in channels:
        count += 3 * 3 * in_channels + 2 * in_channels  # depthwise
        count += in_channels * out_channels + 2 * out_channels  # pointwise
        in_channels = out_channels
    return count


def test_parameter_counts():
    backbone = MobileNetV1()
    count = sum(p.numel() for p in backbone.parameters())
    assert count == _expected_parameters(32, CHANNELS)
    assert round(count / 1e6, 1) == 3.2
    init_default_scope('mmpretrain')
    classifier = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='MobileNetV1'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead', num_classes=1000, in_channels=1024)))
    total = sum(p.numel() for p in classifier.parameters())
    assert total == count + 1024 * 1000 + 1000
    assert round(total / 1e6, 1) == 4.2


@pytest.mark.parametrize(
    'widen_factor, stem, channels',
    [
        (0.25, 8, [16, 32, 32, 64, 64] + [128] * 6 + [256] * 2),
        (0.5, 16, [32, 64, 64, 128, 128] + [256] * 6 + [512] * 2),
        (0.75, 24, [48, 96, 96, 192, 192] + [384] * 6 + [768] * 2),
        (1.5, 48, [96, 192, 192, 384, 384] + [768] * 6 + [1536] * 2),
        # 32 * 0.3 = 9.6 rounds to 8, less than 90 % of 9.6: up to 16.
        (0.3, 16, [24, 40, 40, 80, 80] + [152] * 6 + [304] * 2),
    ])
@torch.no_grad()
def test_widen_factor_channels(widen_factor, stem, channels):
    model = MobileNetV1(
        widen_factor=widen_factor, out_indices=tuple(range(13))).eval()
    assert model.conv1.conv.out_channels == stem
    assert model.out_channels == channels
    assert [out.size(1) for out in model(images(32))] == channels
    assert sum(p.numel() for p in model.parameters()) == \
        _expected_parameters(stem, channels)


def _frozen_and_trained(frozen_stages):
    names = ['conv1'] + [f'layer{k}' for k in range(1, 14)]
    return names[:frozen_stages + 1], names[frozen_stages + 1:]


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 5, 13])
def test_frozen_stages(frozen_stages):
    model = MobileNetV1(widen_factor=0.25, frozen_stages=frozen_stages)
    model.train()
    frozen, trained = _frozen_and_trained(frozen_stages)
    before = {
        name: {
            k: v.clone()
            for k, v in getattr(model, name).state_dict().items()
        }
        for name in frozen
    }
    # An input that needs a gradient, so that backward runs even when every
    # stage is frozen.
    x = images(32, batch=2).requires_grad_()
    model(x)[0].sum().backward()
    assert x.grad is not None
    for name in frozen:
        module = getattr(model, name)
        for param_name, param in module.named_parameters():
            assert not param.requires_grad, (name, param_name)
            assert param.grad is None, (name, param_name)
        for bn in module.modules():
            if isinstance(bn, _BatchNorm):
                assert not bn.training, name
        # eval-mode BNs did not update their running statistics
        for key, value in module.state_dict().items():
            torch.testing.assert_close(value, before[name][key])
    for name in trained:
        module = getattr(model, name)
        assert module.training, name
        for param_name, param in module.named_parameters():
            assert param.requires_grad, (name, param_name)
            assert param.grad is not None, (name, param_name)
    # train() again (what the runner does every epoch) keeps them frozen.
    model.eval()
    model.train()
    for name in frozen:
        assert not any(m.training for m in getattr(model, name).modules())


@pytest.mark.parametrize('norm_eval', [False, True])
def test_norm_eval(norm_eval):
    model = MobileNetV1(widen_factor=0.25, norm_eval=norm_eval)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert len(bns) == 1 + 2 * 13
    assert all(bn.training != norm_eval for bn in bns)
    means = [bn.running_mean.clone() for bn in bns]
    model(images(32, batch=2))[0].sum().backward()
    changed = [
        not torch.equal(bn.running_mean, mean) for bn, mean in zip(bns, means)
    ]
    assert all(c != norm_eval for c in changed)
    # norm_eval freezes statistics, not parameters
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize('kwargs, message', [
    (dict(out_indices=(13, )), r'out_indices .* range\(0, 13\), got 13'),
    (dict(out_indices=(-1, )), r'out_indices .* got -1'),
    (dict(out_indices=()), 'out_indices must name at least one block'),
    (dict(out_indices=(1.0, )), r'out_indices .* got 1\.0'),
    (dict(frozen_stages=14), r'frozen_stages .* range\(-1, 14\).* got 14'),
    (dict(frozen_stages=-2), 'frozen_stages .* got -2'),
    (dict(widen_factor=0), 'widen_factor must be a positive number, got 0'),
    (dict(widen_factor=-0.5), 'widen_factor must be a positive number'),
    (dict(widen_factor='1.0'), 'widen_factor must be a positive number'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MobileNetV1(**kwargs)


def test_int_out_indices_is_one_block():
    model = MobileNetV1(widen_factor=0.25, out_indices=4).eval()
    with torch.no_grad():
        (out, ) = model(images(64))
    assert tuple(out.shape) == (1, 64, 8, 8)


def test_default_init_cfg():
    model = MobileNetV1(widen_factor=0.25)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.weight.data.zero_()
    model.init_weights()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    # Kaiming fan-out: std = sqrt(2 / (out_channels * kh * kw)).
    weight = model.layer13.pointwise_conv.conv.weight.detach()
    expected = (2 / weight.size(0))**0.5
    assert abs(float(weight.std()) / expected - 1) < 0.05


def test_builds_from_the_mmpretrain_registry():
    # `import mgd_plugin` registering it in a fresh process is checked in
    # test_registry.py.
    model = MODELS.build(
        dict(type='MobileNetV1', widen_factor=0.5, out_indices=(2, 12)))
    assert type(model) is MobileNetV1
    assert model.out_indices == (2, 12) and model.out_channels[12] == 512


def test_image_classifier_trains_one_step(tmp_path):
    root = write_image_folder(
        str(tmp_path / 'images'), num_classes=3, per_class=2, size=64)
    init_default_scope('mmpretrain')
    loader = image_loader(root)
    torch.manual_seed(0)
    classifier = MODELS.build(
        dict(
            type='ImageClassifier',
            data_preprocessor=dict(
                type='ClsDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3),
            backbone=dict(
                type='MobileNetV1', widen_factor=0.25, frozen_stages=1),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=256)))
    classifier.init_weights()
    classifier.train()
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(
            [p for p in classifier.parameters() if p.requires_grad], lr=0.1))
    log_vars = classifier.train_step(next(iter(loader)), optim_wrapper)
    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    after = classifier.state_dict()
    for name in ('backbone.layer13.pointwise_conv.conv.weight',
                 'backbone.layer2.depthwise_conv.conv.weight',
                 'head.fc.weight'):
        assert not torch.equal(after[name], before[name]), name
    for name in ('backbone.conv1.conv.weight',
                 'backbone.layer1.pointwise_conv.bn.running_mean'):
        assert torch.equal(after[name], before[name]), name


def test_mgd_resnet50_to_mobilenet_v1_trains_one_step(tmp_path):
    # The paper's ImageNet pair with the four documented positions (see
    # test_feature_positions.py), at small widths: ResNet-50 with 16 base
    # channels (64, 128, 256, 512 at the positions), MobileNet-V1 0.25x
    # (32, 64, 128, 256), on 64 px images.
    root = write_image_folder(
        str(tmp_path / 'images'), num_classes=3, per_class=2, size=64)
    cfg = Config.fromfile(
        f'{REPO_ROOT}/configs/_base_/models/mgd-amp_resnet50-mobilenet-v1.py'
    ).model
    cfg.teacher.backbone.update(stem_channels=16, base_channels=16)
    cfg.teacher.head.update(num_classes=3, in_channels=512)
    cfg.architecture.backbone.widen_factor = 0.25
    cfg.architecture.head.update(num_classes=3, in_channels=256)
    for k, position in enumerate(cfg.distiller.positions):
        position.student.channels = [32, 64, 128, 256][k]
        position.teacher.channels = [64, 128, 256, 512][k]
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    teacher = MODELS.build(cfg.teacher)
    cfg.teacher_ckpt = save_model_checkpoint(teacher,
                                             str(tmp_path / 'teacher.pth'))
    algo = RAZOR_MODELS.build(cfg)
    loader = image_loader(root)

    report = algo.matching_pass(loader, num_samples=6, show_progress=False)
    assert algo.matching_installed
    assert all(not r.get('skipped', False) for r in report.values())
    for position in algo.distiller.positions:
        sizes = algo.distiller.reducer(position).group_size
        assert sizes.tolist() == [2] * (int(sizes.sum()) // 2)

    algo.train()
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    optim_wrapper = OptimWrapper(
        torch.optim.SGD([p for p in algo.parameters() if p.requires_grad],
                        lr=0.1))
    log_vars = algo.train_step(next(iter(loader)), optim_wrapper)
    for k in range(4):
        loss = log_vars[f'distill.loss_mgd{k}']
        assert torch.isfinite(loss) and loss > 0, k
    after = algo.state_dict()
    for name in ('architecture.backbone.layer3.pointwise_conv.conv.weight',
                 'architecture.backbone.layer13.pointwise_conv.bn.weight',
                 'architecture.head.fc.weight'):
        assert not torch.equal(after[name], before[name]), name
    for name, value in after.items():
        if name.startswith('teacher.') and value.is_floating_point():
            assert torch.equal(value, before[name]), name
