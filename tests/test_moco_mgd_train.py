"""MoCo-v2 + MGD through the tools, as a user runs them: a 2-epoch
pretraining with two CPU processes (tools/dist_train.sh), a kill and
--resume, the linear evaluation of the resulting student backbone
(tools/train.py, tools/test.py) and its k-NN accuracy."""
import json
import math
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config
from torch.distributed.elastic.utils.distributed import get_free_port

from conftest import REPO_ROOT, save_moco_checkpoint
from test_train_tools import check, run, train

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'moco_mgd_tiny_resnet.py')
LINEAR = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'moco_linear_tiny_resnet.py')
SHUFFLE_WARNING = 'shuffle_bn=True has no effect with a single process'
LOSSES = ['loss_contrastive'] + [f'distill.loss_mgd{k}' for k in range(4)]


def load(path):
    return torch.load(str(path), map_location='cpu')


def assert_same_tensors(a, b, keys=None):
    keys = a.keys() if keys is None else keys
    for key in keys:
        assert torch.equal(a[key], b[key]), key


def teacher_keys(state):
    return {
        k: v
        for k, v in state.items() if k.startswith('teacher_backbone.')
    }


def matched_epochs(log):
    return sorted(
        {int(e)
         for e in re.findall(r'MGD matching for epoch (\d+)', log)})


def logged_losses(log):
    """Every logged value of each loss term."""
    return {
        name:
        [float(v) for v in re.findall(re.escape(name) + r': (\S+)', log)]
        for name in LOSSES
    }


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp('moco_teacher') / 'mocov2_teacher.pth'
    moco = save_moco_checkpoint(
        Config.fromfile(CONFIG).model.teacher_backbone, str(path))
    return str(path), moco.backbone.state_dict()


def pretrain_options(directory,
                     data_root,
                     teacher_ckpt,
                     probe=None,
                     extra_hooks=(),
                     max_epochs=2):
    cfg = Config.fromfile(CONFIG)
    matching = cfg.custom_hooks[0].to_dict()
    matching['dataloader']['dataset']['data_root'] = str(data_root)
    hooks = [matching]
    if probe is not None:
        hooks.append(dict(type='StateProbeHook', out_dir=str(probe)))
    hooks.extend(extra_hooks)
    config = directory / f'moco_mgd_{len(list(directory.iterdir()))}.py'
    config.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_imports = dict(imports=['mgd_plugin', 'probe_hooks'], "
        'allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n')
    return [
        str(config),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'model.teacher_ckpt={teacher_ckpt}',
        f'train_cfg.max_epochs={max_epochs}',
    ]


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory, tiny_image_folder, teacher_ckpt):
    """Two CPU processes, two epochs; matching before epochs 1 and 2."""
    directory = tmp_path_factory.mktemp('moco_dist')
    probe, work_dir = directory / 'probe', directory / 'work'
    options = pretrain_options(directory, tiny_image_folder, teacher_ckpt[0],
                               probe)
    proc = check(
        run(['bash', 'tools/dist_train.sh', options[0], '2'] + options[1:] +
            ['--work-dir', str(work_dir)],
            PORT=str(get_free_port())))
    return dict(work_dir=work_dir, probe=probe, log=proc.stdout + proc.stderr)


def test_two_process_pretraining(dist_run, teacher_ckpt):
    log, probe = dist_run['log'], dist_run['probe']
    assert 'Epoch(train) [2][3/3]' in log  # 24 images / (2 x 4) per step
    assert SHUFFLE_WARNING not in log  # two processes: it shuffles
    assert matched_epochs(log) == [1, 2]
    # Both loss terms, logged separately, finite at every logged step.
    for name, values in logged_losses(log).items():
        assert len(values) == 6, name
        assert all(math.isfinite(v) for v in values), name

    rank0 = load(probe / 'after_train_rank0.pth')
    rank1 = load(probe / 'after_train_rank1.pth')
    assert rank0['world_size'] == rank1['world_size'] == 2
    state0, state1 = rank0['state_dict'], rank1['state_dict']
    # The same matching, queue and weights (momentum encoder included) on
    # both ranks; BatchNorm statistics are each rank's own.
    shared = [
        k for k in state0
        if 'reducer' in k or k.startswith('queue') or k in ('matching_epoch',
                                                            'encoder_k.steps')
    ]
    assert any('reducer.assignment' in k for k in shared)
    assert_same_tensors(state0, state1, shared)
    assert any(k.startswith('encoder_k.') for k in rank0['parameters'])
    assert_same_tensors(rank0['parameters'], rank1['parameters'])
    assert int(state0['queue_ptr']) == 2 * 3 * 8 % 32
    # The teacher: the checkpoint's backbone, unchanged, in eval mode.
    start = load(probe / 'before_train_rank0.pth')['state_dict']
    _, teacher = teacher_ckpt
    for state in (start, state0, state1):
        assert_same_tensors(
            {
                k[len('teacher_backbone.'):]: v
                for k, v in teacher_keys(state).items()
            }, teacher)
    for name, training in rank0['training'].items():
        if name.startswith('teacher_backbone'):
            assert not training, name
    assert rank0['training']['backbone']
    # The student did train.
    assert not torch.equal(start['backbone.conv1.weight'],
                           state0['backbone.conv1.weight'])


def test_checkpoint_keeps_the_hyper_parameters(dist_run):
    saved = load(dist_run['work_dir'] / 'epoch_2.pth')
    cfg = Config.fromstring(saved['meta']['cfg'], file_format='.py')
    assert cfg.model.type == 'MoCoMGD'
    assert cfg.model.encoder_momentum == 0.99
    assert cfg.model.queue_len == 32
    assert cfg.model.shuffle_bn is True
    assert cfg.model.head.temperature == 0.2
    assert cfg.model.distiller.positions.loss_factor == 100
    assert cfg.model.distiller.reducer.type == 'AbsMaxPoolReducer'
    assert cfg.optim_wrapper.optimizer.lr == 0.03
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.custom_hooks[0].epochs == [1, 2]


def test_kill_and_resume_continues_with_queue_encoder_and_matching(
        tmp_path, tiny_image_folder, teacher_ckpt):
    work_dir = tmp_path / 'work'
    crash = dict(type='CrashDuringSaveHook', epoch=2)
    proc = train(
        pretrain_options(
            tmp_path, tiny_image_folder, teacher_ckpt[0], extra_hooks=[crash])
        + ['--work-dir', str(work_dir)])
    assert proc.returncode != 0
    assert 'simulated kill while saving' in proc.stderr
    assert SHUFFLE_WARNING in proc.stdout + proc.stderr  # one process
    saved = load(work_dir / 'epoch_1.pth')['state_dict']
    # The matching for epoch 2 was made before epoch 1 was saved.
    assert int(saved['matching_epoch']) == 2

    probe = tmp_path / 'probe'
    proc = check(
        train(
            pretrain_options(tmp_path, tiny_image_folder, teacher_ckpt[0],
                             probe) +
            ['--work-dir', str(work_dir), '--resume']))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [1]' not in log and 'Epoch(train) [2]' in log
    assert matched_epochs(log) == []
    resumed = load(probe / 'before_train_rank0.pth')['state_dict']
    # Everything, queue and pointer, momentum encoder (and its step count),
    # matching and teacher included, is what was saved.
    assert resumed.keys() == saved.keys()
    assert_same_tensors(resumed, saved)
    assert int(saved['queue_ptr']) == 6 * 4 % 32
    assert int(saved['encoder_k.steps']) == 6
    final = load(probe / 'after_train_rank0.pth')['state_dict']
    assert int(final['encoder_k.steps']) == 12
    assert int(final['queue_ptr']) == 12 * 4 % 32
    assert not torch.equal(final['queue'], saved['queue'])
    assert_same_tensors(teacher_keys(final), teacher_keys(saved))


@pytest.fixture(scope='module')
def linear_run(tmp_path_factory, tiny_image_folder, dist_run):
    directory = tmp_path_factory.mktemp('linear')
    pretrained = dist_run['work_dir'] / 'epoch_2.pth'
    config = directory / 'linear.py'
    config.write_text(
        f'_base_ = [{LINEAR!r}]\n'
        "custom_imports = dict(imports=['mgd_plugin', 'probe_hooks'], "
        'allow_failed_imports=False)\n'
        f"custom_hooks = [dict(type='StateProbeHook', "
        f"out_dir={str(directory / 'probe')!r})]\n")
    options = [
        str(config),
        '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={pretrained}',
        f'train_dataloader.dataset.data_root={tiny_image_folder}',
        f'val_dataloader.dataset.data_root={tiny_image_folder}',
        f'test_dataloader.dataset.data_root={tiny_image_folder}',
    ]
    proc = check(train(options + ['--work-dir', str(directory / 'work')]))
    return dict(
        directory=directory,
        options=options,
        pretrained=pretrained,
        log=proc.stdout + proc.stderr)


def test_linear_evaluation_trains_a_head_on_the_student_backbone(linear_run):
    directory = linear_run['directory']
    pretraining = load(linear_run['pretrained'])['state_dict']
    student = {
        k[len('backbone.'):]: v
        for k, v in pretraining.items() if k.startswith('backbone.')
    }
    before = load(directory / 'probe' / 'before_train_rank0.pth')
    after = load(directory / 'probe' / 'after_train_rank0.pth')
    backbone = {
        k[len('backbone.'):]: v
        for k, v in before['state_dict'].items() if k.startswith('backbone.')
    }
    assert backbone.keys() == student.keys()
    assert_same_tensors(backbone, student)
    # Frozen: the backbone (BN statistics included) did not move.
    assert_same_tensors(before['state_dict'], after['state_dict'],
                        ['backbone.' + k for k in student])
    assert not torch.equal(before['state_dict']['head.fc.weight'],
                           after['state_dict']['head.fc.weight'])
    assert 'accuracy/top1' in linear_run['log']


def test_linear_checkpoint_evaluates_with_the_test_tool(linear_run):
    directory = linear_run['directory']
    out = directory / 'metrics.json'
    check(
        run([
            sys.executable, 'tools/test.py', linear_run['options'][0],
            str(directory / 'work' / 'epoch_1.pth'), '--out',
            str(out), '--work-dir',
            str(directory / 'test')
        ] + linear_run['options'][1:]))
    assert 'accuracy/top1' in out.read_text()


def test_knn_accuracy_of_the_student_backbone(tmp_path, tiny_image_folder,
                                              dist_run):
    out = tmp_path / 'knn.json'
    check(
        run([
            sys.executable, 'tools/analysis_tools/knn_eval.py', LINEAR,
            '--checkpoint',
            str(dist_run['work_dir'] / 'epoch_2.pth'), '--k', '1', '5',
            '--out',
            str(out), '--cfg-options',
            f'train_dataloader.dataset.data_root={tiny_image_folder}',
            f'test_dataloader.dataset.data_root={tiny_image_folder}'
        ]))
    metrics = json.loads(out.read_text())
    assert set(metrics) == {'knn/top1@k1', 'knn/top1@k5'}
    # The queries are the bank's own images: the nearest neighbour of each
    # is itself, if the features are those of one deterministic network.
    assert metrics['knn/top1@k1'] == 100.0
    assert 0 <= metrics['knn/top1@k5'] <= 100


def test_export_student_keeps_the_student_moco(tmp_path, dist_run):
    """export_student on a MoCoMGD checkpoint: a plain MMPretrain MoCo
    checkpoint and config, without the teacher or the distiller."""
    import mmpretrain
    checkpoint = dist_run['work_dir'] / 'epoch_2.pth'
    out = tmp_path / 'student.pth'
    check(
        run([
            sys.executable, 'tools/model_converters/export_student.py',
            str(checkpoint),
            str(out)
        ]))
    saved = load(checkpoint)['state_dict']
    student = torch.load(str(out), weights_only=True)['state_dict']
    assert not [
        k for k in student if k.startswith(('teacher_backbone.', 'distiller.'))
    ]
    assert 'matching_epoch' not in student
    assert_same_tensors(student, saved)
    assert {k.split('.')[0]
            for k in student
            } == {'backbone', 'neck', 'encoder_k', 'queue', 'queue_ptr'}
    cfg = Config.fromfile(str(tmp_path / 'student.py'))
    assert cfg.model.type == 'MoCo'
    assert cfg.model.momentum == pytest.approx(1 - 0.99)
    model = mmpretrain.get_model(
        str(tmp_path / 'student.py'), pretrained=str(out))
    assert_same_tensors(model.state_dict(), student)
