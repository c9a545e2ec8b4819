"""Where the shipped MGD base configs distil, checked on the built models.

For each base config (teacher ResNet-50; students ResNet-18, the plugin's
MobileNet-V1, MobileNet-V2, ShuffleNet-V2) the table below documents every
position (the same table as docs/feature_positions.md). The tests build each
algorithm once, give every BatchNorm random (trained-like) statistics, run
teacher and student with the recorders on, and check that:

* each recorder sees the documented module, number of calls, channels and
  spatial size, and student and teacher sizes agree at every position;
* the recorded tensors are pre-activation: they have negative values, they
  equal the tensor recomputed independently from the producing block's
  weights (functional conv + BN, residual add), and the activation of the
  recorded tensor is what the network passes on;
* every margin BN is a BatchNorm of the teacher with the teacher's channel
  count, sits in the recorded block, and gave the reducer its margins; on
  both sides, the documented BN before the activation (the margin BN the
  network would give as a teacher) is a BatchNorm with the position's
  channel count in the producing block;
* ``matching_pass`` succeeds, installs balanced groups and the MGD losses
  can then be computed.
"""
import math
import os.path as osp
from dataclasses import dataclass
from operator import attrgetter
from typing import List, Optional

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

import mgd_plugin  # noqa: F401  (registers the MGD modules)
from mgd_plugin.models.utils import bn_margin

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
SIZE = 64  # small input; every position's size is exactly SIZE/224 of 224's


@dataclass
class Side:
    recorder_type: str  # MMRazor recorder type in the config
    source: str  # recorded module
    record_idx: int
    data_idx: Optional[int]
    calls: int  # how often the source runs per forward
    channels: int
    size_224: int  # H = W at 224 px
    producer: str  # block/ConvModule recomputed independently
    kind: str  # how to recompute it, see ``recompute``
    bn: str  # the BatchNorm before the activation (margin BN as a teacher)


@dataclass
class Position:
    student: Side
    teacher: Side
    margin_bn: str


def _resnet(block, calls, channels, size):
    # ResNet blocks: the recorded tensor is the input of the shared `relu`
    # at its last call (after the residual add).
    last_bn = 'bn3' if calls == 3 else 'bn2'
    return Side('ModuleInputs', f'backbone.{block}.relu', calls - 1, 0, calls,
                channels, size, f'backbone.{block}', 'resnet_block',
                f'backbone.{block}.{last_bn}')


def _r50(stage):
    last = [2, 3, 5, 2][stage]
    block = f'layer{stage + 1}.{last}'
    return _resnet(block, 3, [256, 512, 1024, 2048][stage],
                   [56, 28, 14, 7][stage]), f'backbone.{block}.bn3'


def _r18(stage):
    return _resnet(f'layer{stage + 1}.1', 2, [64, 128, 256, 512][stage],
                   [56, 28, 14, 7][stage])


def _mbv2(layer, channels, size):
    conv_module = f'backbone.layer{layer}.0.conv.0'
    return Side('ModuleOutputs', f'{conv_module}.bn', 0, None, 1, channels,
                size, conv_module, 'conv_module', f'{conv_module}.bn')


def _mbv1(layer, channels, size):
    block = f'backbone.layer{layer}'
    return Side('ModuleOutputs', f'{block}.pointwise_conv.bn', 0, None, 1,
                channels, size, block, 'depthwise_separable',
                f'{block}.pointwise_conv.bn')


def _shufflenet(stage, last, channels, size):
    block = f'backbone.layers.{stage}.{last}'
    return Side('ModuleOutputs', f'{block}.branch2.2.bn', 0, None, 1, channels,
                size, block, 'shufflenet_block', f'{block}.branch2.2.bn')


def _positions_r50(students, stages):
    out = []
    for student, stage in zip(students, stages):
        teacher, margin_bn = _r50(stage)
        out.append(Position(student, teacher, margin_bn))
    return out


CONFIGS = {
    'resnet18': ('configs/_base_/models/mgd-amp_resnet50-resnet18.py',
                 _positions_r50([_r18(k) for k in range(4)], range(4))),
    'mobilenet-v1': ('configs/_base_/models/mgd-amp_resnet50-mobilenet-v1.py',
                     _positions_r50([
                         _mbv1(3, 128, 56),
                         _mbv1(5, 256, 28),
                         _mbv1(11, 512, 14),
                         _mbv1(13, 1024, 7),
                     ], range(4))),
    'mobilenet-v2': (
        'configs/_base_/models/mgd-amp_resnet50-mobilenet-v2.py',
        _positions_r50(
            [
                _mbv2(3, 144, 56),  # block 4
                _mbv2(4, 192, 28),  # block 7
                _mbv2(5, 384, 14),  # block 11
                _mbv2(7, 960, 7),  # block 17
            ],
            range(4))),
    'shufflenet-v2':
    ('configs/_base_/models/mgd-amp_resnet50-shufflenet-v2.py',
     _positions_r50([
         _shufflenet(0, 3, 58, 28),
         _shufflenet(1, 7, 116, 14),
         _shufflenet(2, 3, 232, 7),
     ], range(1, 4))),
}


# ----------------------------------------------------------------------
# Independent recomputation of the recorded tensors.
# ----------------------------------------------------------------------
def _conv_bn(x, conv, bn):
    y = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding,
                 conv.dilation, conv.groups)
    return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                        False, 0.0, bn.eps)


def recompute(kind, module, x, out):
    """The pre-activation tensor produced in ``module`` from its input
    ``x``, and the part of ``module``'s output ``out`` that is its
    activation, with that activation."""
    if kind == 'resnet_block':
        pairs = [('conv1', 'bn1'), ('conv2', 'bn2')]
        if hasattr(module, 'conv3'):
            pairs.append(('conv3', 'bn3'))
        y = x
        for i, (conv, bn) in enumerate(pairs):
            y = _conv_bn(y, getattr(module, conv), getattr(module, bn))
            if i < len(pairs) - 1:
                y = F.relu(y)
        # Positions are last blocks of stages: no projection shortcut.
        assert module.downsample is None
        pre = y + x
        return pre, out, F.relu
    if kind == 'conv_module':
        pre = _conv_bn(x, module.conv, module.bn)
        return pre, out, lambda t: t.clamp(0, 6)  # ReLU6
    if kind == 'depthwise_separable':
        dw, pw = module.depthwise_conv, module.pointwise_conv
        y = F.relu(_conv_bn(x, dw.conv, dw.bn))
        pre = _conv_bn(y, pw.conv, pw.bn)
        return pre, out, F.relu
    if kind == 'shufflenet_block':
        assert module.stride == 1
        c = x.size(1) // 2 + x.size(1) % 2
        b = module.branch2
        y = F.relu(_conv_bn(x[:, c:], b[0].conv, b[0].bn))
        y = _conv_bn(y, b[1].conv, b[1].bn)  # depthwise, no activation
        pre = _conv_bn(y, b[2].conv, b[2].bn)
        # channel_shuffle(cat(x1, relu(pre)), 2) puts branch2 on odd channels
        return pre, out[:, 1::2], F.relu
    raise ValueError(kind)


# ----------------------------------------------------------------------
# Fixtures: each algorithm is built once per module.
# ----------------------------------------------------------------------
def _randomise_bns(model, generator):
    """Trained-like BN statistics (fresh BNs are identities)."""
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            n = module.num_features
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.3 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.2 *
                                          torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 +
                                         torch.rand(n, generator=generator))


def _build(config):
    from mmrazor.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    cfg.model.teacher_ckpt = None
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    algo = MODELS.build(cfg.model)
    generator = torch.Generator().manual_seed(0)
    _randomise_bns(algo.teacher, generator)
    _randomise_bns(algo.student, generator)
    algo.distiller.init_margins(algo.teacher)  # margins of the new BNs
    algo.eval()
    return algo


@dataclass
class Run:
    student: List[torch.Tensor]  # recorded, per position
    teacher: List[torch.Tensor]
    student_hooked: List[tuple]  # (input, output) of the producer
    teacher_hooked: List[tuple]
    student_calls: List[int]
    teacher_calls: List[int]


@torch.no_grad()
def _recorded_forward(algo, positions, size, batch=2):
    distiller = algo.distiller
    hooked = {}
    handles = []
    for side, model in (('student', algo.student), ('teacher', algo.teacher)):
        for k, position in enumerate(positions):
            spec = getattr(position, side)
            module = attrgetter(spec.producer)(model)

            def hook(mod, args, out, key=(side, k)):
                hooked[key] = (args[0].clone(), out.clone())

            handles.append(module.register_forward_hook(hook))
    x = torch.randn(
        batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    try:
        with distiller.teacher_recorders, distiller.student_recorders:
            algo.teacher(x, None, mode='tensor')
            algo.student(x, None, mode='tensor')
    finally:
        for handle in handles:
            handle.remove()
    run = Run([], [], [], [], [], [])
    for k, p in enumerate(distiller.positions):
        run.student.append(distiller._recorded(p, True))
        run.teacher.append(distiller._recorded(p, False))
        run.student_hooked.append(hooked['student', k])
        run.teacher_hooked.append(hooked['teacher', k])
        run.student_calls.append(
            len(
                distiller.student_recorders.get_recorder(
                    p.student_recorder).data_buffer))
        run.teacher_calls.append(
            len(
                distiller.teacher_recorders.get_recorder(
                    p.teacher_recorder).data_buffer))
    return run


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def built(request):
    config, positions = CONFIGS[request.param]
    algo = _build(config)
    return request.param, algo, positions, _recorded_forward(
        algo, positions, SIZE)


# ----------------------------------------------------------------------
# Tests.
# ----------------------------------------------------------------------
def _config_side(distiller, position, student):
    recorders = (
        distiller.student_recorders
        if student else distiller.teacher_recorders)
    name = position.student_recorder if student else position.teacher_recorder
    return recorders.get_recorder(name)


def test_config_matches_documented_positions(built):
    name, algo, positions, _ = built
    distiller = algo.distiller
    assert len(distiller.positions) == len(positions), name
    for p, doc in zip(distiller.positions, positions):
        for student, spec in ((True, doc.student), (False, doc.teacher)):
            recorder = _config_side(distiller, p, student)
            assert type(recorder).__name__ == spec.recorder_type + 'Recorder'
            assert recorder.source == spec.source
            idx = p.student_record_idx if student else p.teacher_record_idx
            data_idx = (p.student_data_idx if student else p.teacher_data_idx)
            assert (idx, data_idx) == (spec.record_idx, spec.data_idx)
        assert p.margin_bn == doc.margin_bn
        reducer = distiller.reducer(p)
        assert reducer.student_channels == doc.student.channels
        assert reducer.teacher_channels == doc.teacher.channels


def test_no_inplace_activation(built):
    # MatchingGuidedDistillation must turn off every in-place activation of
    # both networks, including those nested in mmcv ConvModules: an in-place
    # ReLU would overwrite the recorded pre-activation tensor.
    name, algo, _, _ = built
    for side in ('student', 'teacher'):
        for mod_name, module in getattr(algo, side).named_modules():
            if type(module).__module__ == 'torch.nn.modules.activation':
                assert not getattr(module, 'inplace', False), (name, side,
                                                               mod_name)


def test_recorded_shapes(built):
    name, algo, positions, run = built
    for k, doc in enumerate(positions):
        s, t = run.student[k], run.teacher[k]
        assert s.dim() == 4 and t.dim() == 4
        assert s.size(1) == doc.student.channels, (name, k)
        assert t.size(1) == doc.teacher.channels, (name, k)
        assert s.shape[2:] == t.shape[2:], (name, k)
        expected = doc.student.size_224 * SIZE // 224
        assert doc.student.size_224 * SIZE % 224 == 0
        assert tuple(s.shape[2:]) == (expected, expected), (name, k)
        assert doc.teacher.size_224 == doc.student.size_224
        assert s.size(1) <= t.size(1)


def test_record_idx_is_the_documented_call(built):
    # For the shared ResNet relu the recorded call is the last one, the one
    # after the residual add; BN outputs are produced once.
    _, _, positions, run = built
    for k, doc in enumerate(positions):
        assert run.student_calls[k] == doc.student.calls
        assert run.teacher_calls[k] == doc.teacher.calls
        assert doc.teacher.record_idx == doc.teacher.calls - 1
        assert doc.student.record_idx == doc.student.calls - 1


@pytest.mark.parametrize('side', ['student', 'teacher'])
def test_recorded_features_are_pre_activation(built, side):
    name, algo, positions, run = built
    model = getattr(algo, side)
    for k, doc in enumerate(positions):
        spec = getattr(doc, side)
        feature = getattr(run, side)[k]
        x, out = getattr(run, side + '_hooked')[k]
        # A post-ReLU(6) tensor has no negative values.
        assert (feature < 0).float().mean() > 0.05, (name, side, k)
        pre, activated, act = recompute(spec.kind,
                                        attrgetter(spec.producer)(model), x,
                                        out)
        torch.testing.assert_close(feature, pre, rtol=1e-4, atol=1e-4)
        # ... and the network passes on exactly its activation.
        torch.testing.assert_close(
            act(feature), activated, rtol=1e-4, atol=1e-4)


def test_margin_bns(built):
    name, algo, positions, run = built
    distiller = algo.distiller
    for k, (p, doc) in enumerate(zip(distiller.positions, positions)):
        bn = attrgetter(p.margin_bn)(algo.teacher)
        assert isinstance(bn, _BatchNorm), (name, p.margin_bn)
        assert bn.num_features == doc.teacher.channels
        assert bn.num_features == run.teacher[k].size(1)
        # The BN is inside the block whose pre-ReLU output is recorded.
        assert p.margin_bn.startswith(doc.teacher.producer + '.')
        reducer = distiller.reducer(p)
        torch.testing.assert_close(reducer.margin, bn_margin(bn).float())
        assert bool((reducer.margin < 0).all())


@pytest.mark.parametrize('side', ['student', 'teacher'])
def test_bn_before_activation(built, side):
    name, algo, positions, run = built
    model = getattr(algo, side)
    for k, doc in enumerate(positions):
        spec = getattr(doc, side)
        bn = attrgetter(spec.bn)(model)
        assert isinstance(bn, _BatchNorm), (name, side, spec.bn)
        assert bn.num_features == spec.channels
        assert bn.num_features == getattr(run, side)[k].size(1)
        assert spec.bn.startswith(spec.producer + '.'), (name, side, k)
        assert tuple(bn_margin(bn).shape) == (spec.channels, )
        if spec.recorder_type == 'ModuleOutputs':
            assert spec.source == spec.bn, (name, side, k)
        if side == 'teacher':
            assert spec.bn == doc.margin_bn


def test_sizes_at_224(built):
    name, algo, positions, _ = built
    run = _recorded_forward(algo, positions, 224, batch=1)
    for k, doc in enumerate(positions):
        for side in ('student', 'teacher'):
            size = getattr(doc, side).size_224
            assert tuple(getattr(run, side)[k].shape[1:]) == (getattr(
                doc, side).channels, size, size), (name, side, k)


def test_matching_pass_installs_groups(built):
    from mmpretrain.structures import DataSample
    name, algo, positions, _ = built
    generator = torch.Generator().manual_seed(2)
    batch = dict(
        inputs=[
            torch.randint(
                0,
                256, (3, SIZE, SIZE),
                dtype=torch.uint8,
                generator=generator) for _ in range(2)
        ],
        data_samples=[DataSample().set_gt_label(0) for _ in range(2)])
    report = algo.matching_pass([batch], num_samples=2, show_progress=False)
    distiller = algo.distiller
    assert set(report) == {p.name for p in distiller.positions}
    assert algo.matching_installed
    for p, doc in zip(distiller.positions, positions):
        assert not report[p.name].get('skipped', False), (name, p.name)
        assert math.isfinite(report[p.name]['mean_cost'])
        reducer = distiller.reducer(p)
        s, t = doc.student.channels, doc.teacher.channels
        sizes = reducer.group_size
        assert int(sizes.sum()) == t  # every teacher channel is used
        assert int(sizes.min()) == t // s
        assert int(sizes.max()) == -(-t // s)
    # The losses can be computed at these positions.
    with torch.no_grad():
        _recorded_forward(algo, positions, SIZE)
        losses = distiller.compute_distill_losses()
    assert set(losses) == {f'loss_mgd{k}' for k in range(len(positions))}
    for value in losses.values():
        assert torch.isfinite(value).all() and float(value) > 0


# ResNet depths that no shipped config uses, for the table in
# docs/feature_positions.md: same rule (last block of each stage, input of its
# shared relu at the last call), checked on bare backbones.
RESNET_DEPTHS = {
    34: ([2, 3, 5, 2], 2, [64, 128, 256, 512], 'bn2'),
    101: ([2, 3, 22, 2], 3, [256, 512, 1024, 2048], 'bn3'),
    152: ([2, 7, 35, 2], 3, [256, 512, 1024, 2048], 'bn3'),
}


@pytest.mark.parametrize('depth', sorted(RESNET_DEPTHS))
@torch.no_grad()
def test_resnet_depth_positions(depth):
    from mmpretrain.registry import MODELS
    last_blocks, calls, channels, margin_bn = RESNET_DEPTHS[depth]
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='ResNet', depth=depth))
    _randomise_bns(backbone, torch.Generator().manual_seed(0))
    backbone.eval()
    for module in backbone.modules():  # what the algorithm does
        if hasattr(module, 'inplace'):
            module.inplace = False
    records, hooked, handles = {}, {}, []
    for k, last in enumerate(last_blocks):
        block = getattr(backbone, f'layer{k + 1}')[last]
        assert last == len(getattr(backbone, f'layer{k + 1}')) - 1
        handles.append(
            block.relu.register_forward_pre_hook(
                lambda mod, args, k=k: records.setdefault(k, []).append(args[0]
                                                                        )))
        handles.append(
            block.register_forward_hook(lambda mod, args, out, k=k: hooked.
                                        __setitem__(k, (args[0], out))))
    backbone(
        torch.randn(
            2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)))
    for handle in handles:
        handle.remove()
    for k, last in enumerate(last_blocks):
        block = getattr(backbone, f'layer{k + 1}')[last]
        assert len(records[k]) == calls
        feature = records[k][calls - 1]
        size = [56, 28, 14, 7][k] * SIZE // 224
        assert tuple(feature.shape[1:]) == (channels[k], size, size)
        assert (feature < 0).any()
        pre, activated, act = recompute('resnet_block', block, *hooked[k])
        torch.testing.assert_close(feature, pre, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(act(feature), activated)
        bn = getattr(block, margin_bn)
        assert isinstance(bn, _BatchNorm) and bn.num_features == channels[k]
