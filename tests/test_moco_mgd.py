"""MoCoMGD and ConfigurableMoCo in one process: the frozen teacher, the
momentum encoder in MoCo's notation, shuffled BN off and on, the losses,
the matching pass, and every build-time and first-batch error."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from conftest import REPO_ROOT, save_moco_checkpoint
from mgd_plugin.models.selfsup import configurable_moco
from mgd_plugin.models.utils import TeacherCheckpointError, bn_margin
from mgd_plugin.utils import ConfigCheckError, check_config

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'moco_mgd_tiny_resnet.py')


def model_cfg(**changes):
    cfg = copy.deepcopy(Config.fromfile(CONFIG).model)
    cfg.update(changes)
    return cfg


def moco_cfg(**changes):
    """The student of CONFIG alone: a ConfigurableMoCo."""
    cfg = model_cfg(type='ConfigurableMoCo', **changes)
    for key in ('teacher_backbone', 'teacher_ckpt', 'distiller'):
        cfg.pop(key)
    return cfg


def build(cfg=None, seed=0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg() if cfg is None else cfg)


def two_views(num=4, seed=0, size=32):
    generator = torch.Generator().manual_seed(seed)

    def view():
        return torch.randint(
            0,
            256, (num, 3, size, size),
            dtype=torch.uint8,
            generator=generator)

    return dict(inputs=[view(), view()], data_samples=None)


def optim(model):
    return OptimWrapper(
        torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4))


def match(model, seed=0):
    data = dict(inputs=two_views(8, seed)['inputs'][0], data_samples=None)
    model.matching_pass([data], show_progress=False, epoch=1)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def write_moco_checkpoint(path, seed=1):
    """A model-zoo style MoCo-v2 checkpoint of the tiny teacher."""
    return save_moco_checkpoint(model_cfg().teacher_backbone, str(path), seed)


# --------------------------------------------------------------------------
# The teacher
# --------------------------------------------------------------------------
def test_teacher_is_frozen_and_outside_the_student():
    model = build()
    model.train()
    assert model.training and model.backbone.training
    assert not any(m.training for m in model.teacher_backbone.modules())
    assert not any(p.requires_grad
                   for p in model.teacher_backbone.parameters())
    keys = model.state_dict().keys()
    teacher_keys = {k for k in keys if k.startswith('teacher_backbone.')}
    assert teacher_keys == {
        'teacher_backbone.' + k
        for k in model.teacher_backbone.state_dict()
    }
    # Pretrained(prefix='backbone.') takes exactly the query backbone.
    assert {k
            for k in keys if k.startswith('backbone.')
            } == {'backbone.' + k
                  for k in model.backbone.state_dict()}
    # Not part of the momentum encoder.
    teacher_params = {id(p) for p in model.teacher_backbone.parameters()}
    assert not teacher_params & {id(p) for p in model.encoder_k.parameters()}


def test_teacher_comes_from_the_backbone_of_a_moco_checkpoint(tmp_path):
    path = tmp_path / 'mocov2.pth'
    moco = write_moco_checkpoint(path)
    model = build(model_cfg(teacher_ckpt=str(path)))
    assert_same(model.teacher_backbone.state_dict(),
                moco.backbone.state_dict())
    # The margins are those of the loaded teacher.
    for position in model.distiller.positions:
        bn = model.teacher_backbone.get_submodule(position.margin_bn)
        torch.testing.assert_close(
            model.distiller.reducer(position).margin.flatten(),
            bn_margin(bn).flatten())
    # The runner's init_weights keeps them.
    model.init_weights()
    assert_same(model.teacher_backbone.state_dict(),
                moco.backbone.state_dict())


def test_teacher_checkpoint_without_backbone_keys_names_its_prefixes(tmp_path):
    path = tmp_path / 'encoder_q.pth'
    moco = write_moco_checkpoint(tmp_path / 'mocov2.pth')
    renamed = {
        k.replace('backbone.', 'encoder_q.', 1): v
        for k, v in moco.state_dict().items()
    }
    torch.save({'state_dict': renamed}, str(path))
    with pytest.raises(TeacherCheckpointError) as info:
        build(model_cfg(teacher_ckpt=str(path)))
    message = str(info.value)
    assert "no key under prefix 'backbone.'" in message
    assert "'encoder_q.'" in message and "'neck.'" in message


def test_teacher_checkpoint_of_another_architecture_fails(tmp_path):
    path = tmp_path / 'mocov2.pth'
    write_moco_checkpoint(path)
    cfg = model_cfg(teacher_ckpt=str(path))
    cfg.teacher_backbone.base_channels = 8
    with pytest.raises(TeacherCheckpointError, match='shape mismatches'):
        build(cfg)


def test_training_leaves_the_teacher_unchanged_and_trains_the_student():
    model = build()
    match(model)
    teacher = snapshot(model.teacher_backbone)
    student = snapshot(model.backbone)
    optim_wrapper = optim(model)
    model.train()
    for step in range(3):
        log_vars = model.train_step(two_views(seed=step), optim_wrapper)
    assert_same(snapshot(model.teacher_backbone), teacher)
    assert not model.teacher_backbone.training
    assert not torch.equal(student['layer1.0.conv1.weight'],
                           model.backbone.layer1[0].conv1.weight)
    # No optimiser state for the teacher: it never had a gradient.
    teacher_params = set(model.teacher_backbone.parameters())
    assert not teacher_params & set(optim_wrapper.optimizer.state)
    # Both loss terms, separately and finite.
    mgd = [k for k in log_vars if k.startswith('distill.loss_mgd')]
    assert len(mgd) == 4
    for key in ['loss_contrastive'] + mgd:
        assert torch.isfinite(log_vars[key]), key
    torch.testing.assert_close(
        log_vars['loss'], sum(log_vars[k] for k in ['loss_contrastive'] + mgd))


def test_mgd_loss_reaches_only_the_query_backbone():
    model = build()
    match(model)
    model.train()
    data = model.data_preprocessor(two_views(), True)
    losses = model.loss(data['inputs'], None)
    distill = sum(v for k, v in losses.items() if k.startswith('distill.'))
    distill.backward()
    assert model.backbone.layer1[1].conv2.weight.grad.abs().sum() > 0
    assert model.neck.mlp[0].weight.grad is None
    assert all(p.grad is None for p in model.teacher_backbone.parameters())


def test_training_under_autocast():
    # What --amp does on a GPU (AmpOptimWrapper autocasts the forward),
    # with the dtype the CPU autocasts to.
    model = build()
    match(model)
    model.train()
    data = model.data_preprocessor(two_views(), True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    for name, loss in losses.items():
        assert torch.isfinite(loss) and loss > 0, name
    sum(losses.values()).backward()
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.queue.dtype == torch.float32
    assert int(model.queue_ptr) == 4


def test_matching_pass_takes_single_and_multi_view_batches():
    model = build()
    views = two_views(8)['inputs']
    model.matching_pass([dict(inputs=views[0], data_samples=None)],
                        show_progress=False,
                        epoch=1)
    single = {
        p.name: model.distiller.reducer(p).assignment.clone()
        for p in model.distiller.positions
    }
    model.matching_pass([dict(inputs=views, data_samples=None)],
                        show_progress=False,
                        epoch=2)
    for position in model.distiller.positions:
        assert torch.equal(
            model.distiller.reducer(position).assignment,
            single[position.name])
    assert int(model.matching_epoch) == 2


# --------------------------------------------------------------------------
# The momentum encoder, in MoCo's notation
# --------------------------------------------------------------------------
def query_encoder_params(model):
    return [
        p.detach().clone()
        for p in torch.nn.Sequential(model.backbone, model.neck).parameters()
    ]


@pytest.mark.parametrize('kind', ['ConfigurableMoCo', 'MoCoMGD'])
def test_m0_key_encoder_is_the_query_encoder_of_every_step(kind):
    cfg = model_cfg(encoder_momentum=0.0) if kind == 'MoCoMGD' else moco_cfg(
        encoder_momentum=0.0)
    model = build(cfg)
    if kind == 'MoCoMGD':
        match(model)
    optim_wrapper = optim(model)
    model.train()
    for step in range(3):
        before = query_encoder_params(model)
        model.train_step(two_views(seed=step), optim_wrapper)
        keys = list(model.encoder_k.module.parameters())
        for key, query in zip(keys, before):
            assert torch.equal(key, query)
        # ... and the step then moved the query encoder away from it.
        assert not all(
            torch.equal(a, b)
            for a, b in zip(before, query_encoder_params(model)))


def test_m_is_the_weight_of_the_old_key_encoder():
    model = build(moco_cfg(encoder_momentum=0.9))
    assert model.encoder_k.momentum == pytest.approx(0.1)
    optim_wrapper = optim(model)
    model.train()
    model.train_step(two_views(seed=0), optim_wrapper)  # the first: a copy
    old_keys = [p.detach().clone() for p in model.encoder_k.parameters()]
    query = query_encoder_params(model)
    model.train_step(two_views(seed=1), optim_wrapper)
    for new, old, q in zip(model.encoder_k.parameters(), old_keys, query):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * q)


@pytest.mark.parametrize('value', [-0.1, 1.5, 'x', None, True])
def test_momentum_outside_0_1_fails_at_build(value):
    with pytest.raises(
            ValueError, match=r'encoder_momentum must be a number '
            r'in \[0, 1\]'):
        build(model_cfg(encoder_momentum=value))


def test_mmpretrain_momentum_key_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="takes encoder_momentum, MoCo's m"):
        build(moco_cfg(momentum=0.001))


@pytest.mark.parametrize('m', [0.0, 1.0])
def test_momentum_at_the_ends_builds(m):
    assert build(moco_cfg(encoder_momentum=m)).encoder_momentum == m


# --------------------------------------------------------------------------
# Shuffled BN, queue
# --------------------------------------------------------------------------
# MoCoMGD with shuffled BN on runs in test_moco_mgd_train.py.
@pytest.mark.parametrize('kind, shuffle_bn', [('ConfigurableMoCo', True),
                                              ('ConfigurableMoCo', False),
                                              ('MoCoMGD', False)])
def test_single_process_shuffle_warns_once(monkeypatch, kind, shuffle_bn):
    messages = []
    monkeypatch.setattr(configurable_moco, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    cfg = (model_cfg if kind == 'MoCoMGD' else moco_cfg)(shuffle_bn=shuffle_bn)
    model = build(cfg)
    if kind == 'MoCoMGD':
        match(model)
    optim_wrapper = optim(model)
    model.train()
    for step in range(2):
        log_vars = model.train_step(two_views(seed=step), optim_wrapper)
        assert torch.isfinite(log_vars['loss'])
    warnings = [m for m in messages if 'shuffle_bn=True has no effect' in m]
    assert len(warnings) == (1 if shuffle_bn else 0)


def test_queue_takes_the_keys_of_each_step_in_order():
    model = build(moco_cfg(queue_len=8))
    model.train()
    data = model.data_preprocessor(two_views(), True)
    model.loss(data['inputs'], None)
    assert int(model.queue_ptr) == 4
    # With one process (shuffle skipped) the keys are the key encoder's.
    keys = torch.nn.functional.normalize(
        model.encoder_k(data['inputs'][1])[0], dim=1)
    torch.testing.assert_close(model.queue[:, :4].t(), keys)
    model.loss(data['inputs'], None)
    model.loss(data['inputs'], None)
    assert int(model.queue_ptr) == 4  # wrapped around


def test_queue_length_not_a_multiple_of_the_batch_fails_before_the_step():
    model = build(model_cfg(queue_len=30))
    match(model)
    state = snapshot(model)
    model.train()
    with pytest.raises(ValueError) as info:
        model.train_step(two_views(), optim(model))
    message = str(info.value)
    assert 'queue_len=30 is not a multiple of the global batch size 4' in (
        message)
    assert 'drop_last=True' in message
    # Nothing moved: the check comes before the forward pass.
    assert_same(snapshot(model), state)


@pytest.mark.parametrize('world_size, batch, drop_last, problems', [
    (2, 4, True, []),
    (1, 4, True, []),
    (3, 4, True, [
        'model.queue_len: 32 is not a multiple of the global '
        'batch size 12 (train_dataloader.batch_size=4 x 3 '
        'process(es))'
    ]),
    (1, 4, False, ['train_dataloader.drop_last: must be True']),
])
def test_launch_check_of_queue_length_and_global_batch(tiny_image_folder,
                                                       world_size, batch,
                                                       drop_last, problems):
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = tiny_image_folder
    cfg.train_dataloader.batch_size = batch
    cfg.train_dataloader.drop_last = drop_last
    cfg.custom_hooks[0].dataloader.dataset.data_root = tiny_image_folder
    if not problems:
        check_config(cfg, world_size=world_size)
        return
    with pytest.raises(ConfigCheckError) as info:
        check_config(cfg, world_size=world_size)
    for problem in problems:
        assert problem in str(info.value)


def test_launch_check_reads_the_world_size_of_torchrun(monkeypatch,
                                                       tiny_image_folder):
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = tiny_image_folder
    cfg.custom_hooks[0].dataloader.dataset.data_root = tiny_image_folder
    cfg.launcher = 'pytorch'
    monkeypatch.setenv('WORLD_SIZE', '8')  # 32 images: queue 32 is one
    check_config(cfg)
    monkeypatch.setenv('WORLD_SIZE', '16')
    with pytest.raises(ConfigCheckError, match='global batch size 64'):
        check_config(cfg)


def test_one_view_only_is_a_clear_error():
    model = build(moco_cfg())
    model.train()
    with pytest.raises(ValueError, match="MultiView', num_views=2"):
        model.loss(two_views()['inputs'][0], None)


# --------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------
def test_teacher_and_student_with_different_numbers_of_positions_fail():
    cfg = model_cfg()
    cfg.distiller.positions.teacher.pop()
    with pytest.raises(ValueError) as info:
        build(cfg)
    assert ('the student has 4 distillation positions and the teacher 3'
            in str(info.value))


def test_per_side_positions_equal_the_paired_list():
    cfg = model_cfg()
    side = cfg.distiller.positions
    cfg.distiller.positions = [
        dict(student=s, teacher=t, loss_weight=w / side.loss_factor)
        for s, t, w in zip(side.student, side.teacher, side.loss_weight)
    ]
    paired, per_side = build(cfg), build()
    assert paired.distiller.positions == per_side.distiller.positions
    for name, loss in per_side.distiller.distill_losses.items():
        assert loss.loss_weight == pytest.approx(
            paired.distiller.distill_losses[name].loss_weight)


def test_loss_factor_divides_every_loss_weight():
    cfg = model_cfg()
    cfg.distiller.positions.loss_factor = 1.0
    losses = build(cfg).distiller.distill_losses
    assert [losses[f'loss_mgd{k}'].loss_weight
            for k in range(4)] == [1 / 8, 1 / 4, 1 / 2, 1]
    cfg.distiller.positions.loss_factor = 0
    with pytest.raises(ValueError, match='loss_factor must be a positive'):
        build(cfg)


def test_recorder_sources_are_relative_to_the_backbones():
    cfg = model_cfg()
    cfg.distiller.positions.teacher[0].source = 'backbone.layer1.2.relu'
    with pytest.raises(
            ValueError,
            match="'backbone.layer1.2.relu' is not a module of "
            'the teacher'):
        build(cfg)
