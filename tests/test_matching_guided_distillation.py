"""MatchingGuidedDistillation + MatchingGuidedDistiller: build-time errors,
the matching pass, state in checkpoints, student export."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample
from mmrazor.registry import MODELS

from conftest import REPO_ROOT
from mgd_plugin import match_channels

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'mgd_tiny_resnet.py')


def model_cfg():
    return copy.deepcopy(Config.fromfile(CONFIG).model)


def build(cfg=None, seed=0):
    torch.manual_seed(seed)
    return MODELS.build(model_cfg() if cfg is None else cfg)


def batch(num, seed=0, size=32):
    generator = torch.Generator().manual_seed(seed)
    return dict(
        inputs=[
            torch.randint(
                0,
                256, (3, size, size),
                dtype=torch.uint8,
                generator=generator) for _ in range(num)
        ],
        data_samples=[DataSample().set_gt_label(i % 3) for i in range(num)])


@pytest.fixture(scope='module')
def algorithm():
    return build()


# --------------------------------------------------------------------------
# Build-time errors
# --------------------------------------------------------------------------
def test_more_student_than_teacher_channels_fails_at_build():
    cfg = model_cfg()
    cfg.distiller.positions[0].student.channels = 32
    with pytest.raises(ValueError, match='must not exceed teacher_channels'):
        build(cfg)


def test_missing_recorder_source_fails_at_build():
    cfg = model_cfg()
    cfg.distiller.positions[1].teacher.source = 'backbone.layer9.0.relu'
    with pytest.raises(
            ValueError,
            match="'backbone.layer9.0.relu' is not a module of "
            'the teacher'):
        build(cfg)


@pytest.mark.parametrize('source, message', [
    ('backbone.layer1.2.bn9', 'is not a module of the teacher'),
    ('backbone.layer1.2.conv3', 'is a Conv2d, not a BatchNorm'),
    ('backbone.layer2.3.bn3', 'has 32 channels but the reducer takes 16'),
])
def test_bad_margin_bn_fails_at_build(source, message):
    cfg = model_cfg()
    cfg.distiller.positions[0].teacher.margin_bn = source
    with pytest.raises(ValueError, match=message):
        build(cfg)


def test_unknown_reducer_fails_at_build():
    cfg = model_cfg()
    cfg.distiller.reducer.type = 'AbsMeanPoolReducer'
    with pytest.raises(KeyError, match='AbsMeanPoolReducer is not in'):
        build(cfg)


def test_position_without_margin_bn_fails_at_build():
    cfg = model_cfg()
    del cfg.distiller.positions[2].teacher['margin_bn']
    with pytest.raises(
            ValueError, match="MGD position 'mgd2' lacks 'margin_bn'"):
        build(cfg)


def test_spatial_mismatch_fails_before_training():
    cfg = model_cfg()
    # Teacher stage 3 recorded where the student's stage 2 is: 8x8 vs 4x4...
    teacher = cfg.distiller.positions[1].teacher
    teacher.update(
        source='backbone.layer3.5.relu',
        channels=64,
        margin_bn='backbone.layer3.5.bn3')
    algo = build(cfg)
    with pytest.raises(
            ValueError,
            match="position 'mgd1_reducer': student "
            'and teacher spatial sizes differ'):
        algo.matching_pass([batch(2)], num_samples=2, show_progress=False)


def test_unknown_position_keys_fail_at_build():
    cfg = model_cfg()
    cfg.distiller.positions[0]['loss_wieght'] = 1.0
    with pytest.raises(ValueError, match=r"unknown keys \['loss_wieght'\]"):
        build(cfg)


def test_explicit_mmrazor_form_builds_the_same_distiller():
    """The ConfigurableDistiller form with margin_bns is the same model."""
    from mgd_plugin.models.distillers.matching_guided_distiller import \
        expand_positions
    cfg = model_cfg()
    explicit = expand_positions(
        cfg.distiller.pop('positions'), cfg.distiller.pop('reducer'),
        dict(type='NormConnector', norm_cfg=dict(type='BN')))
    cfg.distiller.update(explicit)
    explicit_algo = build(cfg)
    compact_algo = build()
    assert (
        explicit_algo.distiller.positions == compact_algo.distiller.positions)
    assert explicit_algo.state_dict().keys() == compact_algo.state_dict().keys(
    )
    for key, value in compact_algo.state_dict().items():
        assert torch.equal(explicit_algo.state_dict()[key], value), key


def test_positions_clashing_with_explicit_names_fail_at_build():
    cfg = model_cfg()
    cfg.distiller.connectors = dict(
        mgd0_s_bn=dict(
            type='NormConnector', in_channels=4, norm_cfg=dict(type='BN')))
    with pytest.raises(
            ValueError,
            match=r"connectors \['mgd0_s_bn'\] are "
            'defined both explicitly and by `positions`'):
        build(cfg)


def test_mgd_and_kd_compose_in_one_distiller(algorithm):
    cfg = model_cfg()
    cfg.distiller.update(
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.5, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'))))
    algo = build(cfg)
    algo.matching_pass([batch(4)], 4, show_progress=False)
    data = algo.data_preprocessor(batch(4, seed=5), True)
    losses = algo(**data, mode='loss')
    assert {'distill.loss_kd', 'distill.loss_mgd0',
            'distill.loss_mgd3'} <= set(losses)
    assert torch.isfinite(losses['distill.loss_kd'])


# --------------------------------------------------------------------------
# Margins and the matching pass
# --------------------------------------------------------------------------
def test_margins_come_from_the_named_teacher_bn(algorithm):
    from mgd_plugin.models.utils import bn_margin
    bn = algorithm.teacher.backbone.layer4[2].bn3
    torch.testing.assert_close(
        algorithm.distiller.connectors['mgd3_reducer'].margin, bn_margin(bn))


def naive_costs(algorithm, images):
    """The spec's cost, one sample and one channel pair at a time.

    ``2 - 2 <s_hat, t_hat>``: the squared distance of the unit maps. An
    all-zero map has no direction: it counts as the zero vector, so its cost
    against any channel is 2.
    """

    def unit(v):
        norm = v.norm()
        return v / norm if norm > 0 else torch.zeros_like(v)

    algorithm.eval()
    data = algorithm.data_preprocessor(images, False)
    distiller = algorithm.distiller
    with torch.no_grad(), distiller.teacher_recorders, \
            distiller.student_recorders:
        algorithm.teacher(data['inputs'], None, mode='tensor')
        algorithm.student(data['inputs'], None, mode='tensor')
    costs = {}
    for position in distiller.positions:
        s = distiller.get_record(position.student_recorder, True,
                                 position.student_record_idx, 0).double()
        t = distiller.get_record(position.teacher_recorder, False,
                                 position.teacher_record_idx, 0).double()
        cost = np.zeros((s.size(1), t.size(1)))
        for n in range(s.size(0)):
            for i in range(s.size(1)):
                s_hat = unit(s[n, i].flatten())
                for j in range(t.size(1)):
                    t_hat = unit(t[n, j].flatten())
                    cost[i, j] += 2 - 2 * float(s_hat @ t_hat)
        costs[position.name] = cost / s.size(0)
    algorithm.train()
    return costs


def test_matching_pass_solves_the_spec_cost():
    algo = build()
    images = batch(5, seed=3)
    expected = naive_costs(algo, images)
    # Two batches (3 + 2 images) must give the same mean as one of 5; a
    # third batch lies beyond num_samples and must not count.
    first = {k: v[:3] for k, v in images.items()}
    second = {k: v[3:] for k, v in images.items()}
    report = algo.matching_pass(
        [first, second, batch(4, seed=9)],
        num_samples=5,
        show_progress=False,
        epoch=1)
    assert algo.distiller.matching_cost_count == 5
    for position in algo.distiller.positions:
        name = position.name
        reducer = algo.distiller.reducer(position)
        mean = algo.distiller.matching_costs()[name].numpy() / 5
        np.testing.assert_allclose(mean, expected[name], rtol=1e-4, atol=1e-5)
        assignment = match_channels(expected[name])
        np.testing.assert_array_equal(reducer.assignment.numpy(), assignment)
        assert report[name]['mean_cost'] == pytest.approx(
            expected[name][assignment, np.arange(len(assignment))].mean(),
            rel=1e-4)
        assert 'changed' not in report[name]
        assert bool(reducer.matching_installed)
    assert int(algo.matching_epoch) == 1
    assert algo.training  # the pass restores the mode


def test_second_matching_reports_changed_fraction():
    algo = build()
    algo.matching_pass([batch(4, seed=1)], 4, show_progress=False)
    before = {
        p.name: algo.distiller.reducer(p).assignment.clone()
        for p in algo.distiller.positions
    }
    report = algo.matching_pass([batch(4, seed=2)], 4, show_progress=False)
    for position in algo.distiller.positions:
        after = algo.distiller.reducer(position).assignment
        changed = float((after != before[position.name]).double().mean())
        assert report[position.name]['changed'] == pytest.approx(changed)


def test_non_finite_features_keep_the_previous_matching():
    algo = build()
    algo.matching_pass([batch(4, seed=1)], 4, show_progress=False)
    kept = algo.distiller.connectors['mgd3_reducer'].assignment.clone()

    def poison(module, args):
        return (args[0] * float('nan'), )

    handle = algo.teacher.backbone.layer4[2].relu.register_forward_pre_hook(
        poison)
    try:
        with pytest.warns(
                RuntimeWarning,
                match="non-finite features at position "
                "'mgd3_reducer'"):
            report = algo.matching_pass([batch(4, seed=7)],
                                        4,
                                        show_progress=False)
    finally:
        handle.remove()
    assert report['mgd3_reducer'] == dict(skipped=True)
    assert torch.equal(algo.distiller.connectors['mgd3_reducer'].assignment,
                       kept)
    # The other positions were matched anew.
    assert 'changed' in report['mgd0_reducer']


def test_empty_matching_data_is_an_error():
    algo = build()
    with pytest.raises(ValueError, match='yielded no samples'):
        algo.matching_pass([], 4, show_progress=False)


def test_training_step_gives_the_mgd_losses(algorithm):
    algorithm.matching_pass([batch(4)], 4, show_progress=False)
    data = algorithm.data_preprocessor(batch(4, seed=5), True)
    losses = algorithm(**data, mode='loss')
    for k in range(4):
        loss = losses[f'distill.loss_mgd{k}']
        assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    bn = algorithm.distiller.connectors['mgd0_s_bn'].norm
    assert bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in algorithm.teacher.parameters())


def test_matching_and_training_under_autocast():
    # What --amp does on a GPU, with the dtype the CPU autocasts to: the
    # reduced-precision features still give a float64 cost matrix, the same
    # matching as full precision up to rounding, and finite losses/gradients.
    full = build()
    full.matching_pass([batch(8)], 8, show_progress=False)
    mixed = build()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed.matching_pass([batch(8)], 8, show_progress=False)
    assert mixed.matching_installed
    for name, costs in mixed.distiller.matching_costs().items():
        assert costs.dtype == torch.float64
        torch.testing.assert_close(
            costs, full.distiller.matching_costs()[name], rtol=0.05, atol=0.05)

    data = mixed.data_preprocessor(batch(4, seed=5), True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = mixed(**data, mode='loss')
    for k in range(4):
        loss = losses[f'distill.loss_mgd{k}']
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss) and loss > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = [p.grad for p in mixed.architecture.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# --------------------------------------------------------------------------
# State in checkpoints, student export
# --------------------------------------------------------------------------
def test_matching_state_round_trips_through_a_checkpoint(tmp_path):
    algo = build(seed=0)
    algo.matching_pass([batch(4)], 4, show_progress=False, epoch=3)
    path = tmp_path / 'mgd.pth'
    torch.save({'state_dict': algo.state_dict()}, path)

    fresh = build(seed=1)
    assert not fresh.matching_installed
    state = torch.load(path, weights_only=True)['state_dict']
    fresh.load_state_dict(state)
    assert fresh.matching_installed
    assert int(fresh.matching_epoch) == 3
    for position in algo.distiller.positions:
        ours = algo.distiller.reducer(position)
        theirs = fresh.distiller.reducer(position)
        for buffer in ('assignment', 'group_index', 'group_size', 'margin'):
            assert torch.equal(getattr(ours, buffer), getattr(theirs, buffer))
    features = torch.randn(2, 128, 4, 4)
    torch.testing.assert_close(
        algo.distiller.connectors['mgd3_reducer'](features),
        fresh.distiller.connectors['mgd3_reducer'](features))


def test_student_export_loads_into_a_plain_mmpretrain_model(algorithm):
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    prefix = 'architecture.'
    student_state = {
        key[len(prefix):]: value
        for key, value in algorithm.state_dict().items()
        if key.startswith(prefix)
    }
    student = PRETRAIN_MODELS.build(Config.fromfile(CONFIG).student)
    student.load_state_dict(student_state, strict=True)
    images = algorithm.data_preprocessor(batch(2), False)['inputs']
    algorithm.eval()
    student.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            student(images, mode='tensor'),
            algorithm.student(images, mode='tensor'))
    algorithm.train()


# --------------------------------------------------------------------------
# Margins follow the teacher weights actually used
# --------------------------------------------------------------------------
def trained_looking_teacher(seed=5):
    """The tiny teacher with BatchNorm affine parameters far from their
    initial (1, 0), so that margins from untrained BNs are different."""
    torch.manual_seed(seed)
    teacher = MODELS.build(model_cfg().teacher)
    with torch.no_grad():
        for module in teacher.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.2, 2.0)
                module.bias.normal_(0.0, 1.0)
    return teacher


def expected_margins(algo, teacher):
    from operator import attrgetter

    from mgd_plugin.models.utils import bn_margin
    return {
        p.name: bn_margin(attrgetter(p.margin_bn)(teacher))
        for p in algo.distiller.positions
    }


def assert_margins(algo, expected):
    for position in algo.distiller.positions:
        torch.testing.assert_close(
            algo.distiller.reducer(position).margin, expected[position.name])


def test_margins_follow_a_teacher_loaded_by_init_cfg(tmp_path):
    from conftest import save_model_checkpoint
    teacher = trained_looking_teacher()
    path = save_model_checkpoint(teacher, str(tmp_path / 'teacher.pth'))
    cfg = model_cfg()
    cfg.teacher.init_cfg = dict(type='Pretrained', checkpoint=path)
    algo = build(cfg)
    expected = expected_margins(algo, teacher)
    # At build the teacher still has its initial BNs ...
    margin = algo.distiller.reducer(algo.distiller.positions[0]).margin
    assert not torch.allclose(margin, expected['mgd0_reducer'])
    # ... the runner loads the weights in init_weights().
    algo.init_weights()
    assert_margins(algo, expected)


def test_margins_follow_teacher_weights_loaded_after_build():
    teacher = trained_looking_teacher()
    algo = build()
    algo.teacher.load_state_dict(teacher.state_dict())
    algo.matching_pass([batch(4)], show_progress=False, epoch=1)
    assert_margins(algo, expected_margins(algo, teacher))


def test_margins_follow_init_cfg_through_the_runner(tmp_path,
                                                    tiny_image_folder):
    from mmengine.runner import Runner

    from conftest import save_model_checkpoint
    teacher = trained_looking_teacher()
    path = save_model_checkpoint(teacher, str(tmp_path / 'teacher.pth'))
    cfg = Config.fromfile(CONFIG)
    cfg.model.teacher.init_cfg = dict(type='Pretrained', checkpoint=path)
    cfg.train_dataloader.dataset.data_root = tiny_image_folder
    cfg.custom_hooks[0].dataloader.dataset.data_root = tiny_image_folder
    cfg.train_cfg.max_epochs = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.pop('val_dataloader', None)
    cfg.pop('val_cfg', None)
    cfg.pop('val_evaluator', None)
    runner = Runner.from_cfg(cfg)
    runner.train()
    algo = runner.model
    assert_margins(algo, expected_margins(algo, teacher))
    # The teacher itself is frozen: still the loaded weights.
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(algo.teacher.state_dict()[name], value)
