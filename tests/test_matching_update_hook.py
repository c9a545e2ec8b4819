"""MatchingUpdateHook: schedules, config errors, and real training runs
through tools/train.py and tools/dist_train.sh (resume included)."""
import os.path as osp
import re
import sys

import pytest
import torch
from torch.distributed.elastic.utils.distributed import get_free_port

from conftest import REPO_ROOT
from mgd_plugin.engine.hooks import MatchingUpdateHook, log_schedule
from test_train_tools import check, dist_args, load, run, train

MGD_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                      'mgd_tiny_resnet.py')
LOADER = dict(batch_size=2, dataset=dict(type='CustomDataset'))


def due_epochs(hook, max_epochs):
    return [e for e in range(1, max_epochs + 1) if hook.is_due(e, max_epochs)]


def test_interval_schedule():
    assert due_epochs(MatchingUpdateHook(LOADER), 4) == [1, 2, 3, 4]
    assert due_epochs(MatchingUpdateHook(LOADER, interval=2), 6) == [1, 3, 5]


def test_list_schedule_is_the_moco_recipe():
    seed = [1, 2, 3, 6, 9, 15, 26, 43, 74, 126]
    hook = MatchingUpdateHook(LOADER, epochs=seed)
    assert due_epochs(hook, 200) == seed


def test_log_schedule():
    assert log_schedule(200) == [1, 2, 3, 5, 8, 14, 24, 41, 69, 118]
    assert log_schedule(4, num_updates=10) == [1, 2, 3]
    hook = MatchingUpdateHook(LOADER, epochs='log', num_log_updates=5)
    assert due_epochs(hook, 100) == [1, 3, 6, 16, 40]


@pytest.mark.parametrize('kwargs, message', [
    (dict(epochs=[0, 3]), 'positive integers'),
    (dict(epochs=[1, 2.5]), 'positive integers'),
    (dict(epochs=[True]), 'positive integers'),
    (dict(epochs=[]), 'positive integers'),
    (dict(epochs='linear'), "or 'log'"),
    (dict(interval=0), 'interval must be a positive int'),
    (dict(interval=2, epochs=[1]), 'not both'),
    (dict(num_samples=0), 'num_samples must be a positive int'),
])
def test_bad_schedules_fail_at_build(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MatchingUpdateHook(LOADER, **kwargs)


# --------------------------------------------------------------------------
# Real runs
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def mgd_teacher_ckpt(tmp_path_factory):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from conftest import save_model_checkpoint
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(MGD_CONFIG).teacher)
    path = tmp_path_factory.mktemp('mgd_teacher') / 'teacher.pth'
    return save_model_checkpoint(teacher, str(path))


def mgd_options(tmp_path,
                data_root,
                teacher_ckpt,
                max_epochs,
                probe=None,
                interval=1):
    from mmengine.config import Config
    matching_hook = Config.fromfile(MGD_CONFIG).custom_hooks[0].to_dict()
    matching_hook['interval'] = interval
    matching_hook['dataloader']['dataset']['data_root'] = str(data_root)
    hooks = [matching_hook]
    if probe is not None:
        hooks.append(dict(type='StateProbeHook', out_dir=str(probe)))
    config = tmp_path / f'mgd_{len(list(tmp_path.iterdir()))}.py'
    config.write_text(
        f'_base_ = [{MGD_CONFIG!r}]\n'
        "custom_imports = dict(imports=['mgd_plugin', 'probe_hooks'], "
        'allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n')
    return [
        str(config),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'model.teacher_ckpt={teacher_ckpt}',
        f'train_cfg.max_epochs={max_epochs}',
    ]


def matched_epochs(log):
    return sorted(
        {int(e)
         for e in re.findall(r'MGD matching for epoch (\d+)', log)})


def reducer_buffers(state):
    return {k: v for k, v in state.items() if 'reducer' in k}


def test_train_matches_on_schedule_and_resume_keeps_the_matching(
        tmp_path, tiny_image_folder, mgd_teacher_ckpt):
    work_dir = tmp_path / 'work'
    proc = check(
        train(
            mgd_options(
                tmp_path, tiny_image_folder, mgd_teacher_ckpt, 3, interval=2) +
            ['--work-dir', str(work_dir)]))
    log = proc.stdout + proc.stderr
    assert matched_epochs(log) == [1, 3]
    assert 'distill.loss_mgd3' in log
    for name in ('mgd0_reducer', 'mgd1_reducer', 'mgd2_reducer',
                 'mgd3_reducer'):
        assert f'MGD matching for epoch 1, {name}: solved in' in log

    # epoch_2.pth was saved after the matching for epoch 3.
    saved = load(work_dir / 'epoch_2.pth')['state_dict']
    assert int(saved['matching_epoch']) == 3
    assert bool(saved['distiller.connectors.mgd3_reducer.matching_installed'])

    # Resuming from it continues with that matching: no new pass.
    probe = tmp_path / 'probe'
    proc = check(
        train(
            mgd_options(
                tmp_path,
                tiny_image_folder,
                mgd_teacher_ckpt,
                3,
                probe=probe,
                interval=2) + [
                    '--work-dir',
                    str(tmp_path / 'again'), '--resume',
                    str(work_dir / 'epoch_2.pth')
                ]))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in log
    assert matched_epochs(log) == []
    resumed = load(probe / 'before_train_rank0.pth')['state_dict']
    for key, value in reducer_buffers(saved).items():
        assert torch.equal(resumed[key], value), key


def test_extended_run_matches_when_due_on_resume(tmp_path, tiny_image_folder,
                                                 mgd_teacher_ckpt):
    work_dir = tmp_path / 'work'
    proc = check(
        train(
            mgd_options(tmp_path, tiny_image_folder, mgd_teacher_ckpt, 2) +
            ['--work-dir', str(work_dir)]))
    assert matched_epochs(proc.stdout + proc.stderr) == [1, 2]
    proc = check(
        train(
            mgd_options(tmp_path, tiny_image_folder, mgd_teacher_ckpt, 3) +
            ['--work-dir', str(work_dir), '--resume']))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in log
    assert matched_epochs(log) == [3]
    assert int(load(work_dir /
                    'epoch_3.pth')['state_dict']['matching_epoch']) == 3


def test_dist_train_ranks_end_with_identical_groups(tmp_path,
                                                    tiny_image_folder,
                                                    mgd_teacher_ckpt):
    probe = tmp_path / 'probe'
    proc = check(
        run(['bash', 'tools/dist_train.sh'] + dist_args(
            mgd_options(
                tmp_path, tiny_image_folder, mgd_teacher_ckpt, 2, probe=probe))
            + ['--work-dir', str(tmp_path / 'w')],
            PORT=str(get_free_port())))
    assert matched_epochs(proc.stdout + proc.stderr) == [1, 2]
    rank0 = load(probe / 'after_train_rank0.pth')
    rank1 = load(probe / 'after_train_rank1.pth')
    assert rank0['world_size'] == 2
    groups0 = reducer_buffers(rank0['state_dict'])
    groups1 = reducer_buffers(rank1['state_dict'])
    assert len(groups0) == 4 * 5
    for key in groups0:
        assert torch.equal(groups0[key], groups1[key]), key
    for key in rank0['parameters']:
        assert torch.equal(rank0['parameters'][key],
                           rank1['parameters'][key]), key


def test_empty_matching_dataset_stops_before_training(tmp_path,
                                                      tiny_image_folder,
                                                      mgd_teacher_ckpt):
    work_dir = tmp_path / 'work'
    options = mgd_options(tmp_path, tiny_image_folder, mgd_teacher_ckpt, 2)
    # `indices=0` keeps the first 0 images: a dataset that builds but is
    # empty, which a wrong split or filter gives in practice.
    proc = train(options + [
        'custom_hooks.0.dataloader.dataset.indices=0', '--work-dir',
        str(work_dir)
    ])
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "matching dataloader's dataset is empty" in log
    assert 'Epoch(train)' not in log
    assert not list(work_dir.glob('*.pth'))


def test_mgd_checkpoint_evaluates_with_test_tool(tmp_path, tiny_image_folder,
                                                 mgd_teacher_ckpt):
    work_dir = tmp_path / 'work'
    options = mgd_options(tmp_path, tiny_image_folder, mgd_teacher_ckpt, 1)
    check(train(options + ['--work-dir', str(work_dir)]))
    out = tmp_path / 'metrics.json'
    check(
        run([
            sys.executable, 'tools/test.py', options[0],
            str(work_dir / 'epoch_1.pth'), '--out',
            str(out), '--work-dir',
            str(tmp_path / 'test')
        ] + options[1:]))
    assert 'accuracy/top1' in out.read_text()
