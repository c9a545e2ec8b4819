"""Real interruptions of tools/train.py on the tiny MGD config.

A run is killed with SIGKILL (nothing of Python's cleanup runs) at each
moment of saving a checkpoint, then continued with ``--resume``; and a run
killed after an epoch and resumed must end exactly where the same run
without the interruption ends.
"""
import os
import re
import signal

import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT, save_model_checkpoint
from test_train_tools import check, load, train

MGD_CONFIG = os.path.join(REPO_ROOT, 'tests', 'data', 'configs',
                          'mgd_tiny_resnet.py')


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(MGD_CONFIG).teacher)
    path = tmp_path_factory.mktemp('resume_teacher') / 'teacher.pth'
    return save_model_checkpoint(teacher, str(path))


def mgd_run(tmp_path,
            data_root,
            teacher_ckpt,
            max_epochs,
            hooks=(),
            options=()):
    """[config, --cfg-options ...] of an MGD run with extra ``hooks``."""
    matching_hook = Config.fromfile(MGD_CONFIG).custom_hooks[0].to_dict()
    matching_hook['dataloader']['dataset']['data_root'] = str(data_root)
    config = tmp_path / f'mgd_{len(list(tmp_path.iterdir()))}.py'
    config.write_text(
        f'_base_ = [{MGD_CONFIG!r}]\n'
        "custom_imports = dict(imports=['mgd_plugin', 'probe_hooks'], "
        'allow_failed_imports=False)\n'
        f'custom_hooks = {[matching_hook] + list(hooks)!r}\n')
    return [
        str(config),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'model.teacher_ckpt={teacher_ckpt}',
        f'train_cfg.max_epochs={max_epochs}',
        # Validation is not what these tests are about.
        f'train_cfg.val_interval={max_epochs + 1}',
    ] + list(options)


def killed(proc):
    assert proc.returncode == -signal.SIGKILL, (
        proc.stdout[-3000:] + proc.stderr[-6000:])
    return proc


def resumed_epoch(proc):
    found = re.findall(r'resumed epoch: (\d+)', proc.stdout + proc.stderr)
    assert len(found) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    return int(found[0])


def pointer(work_dir):
    return os.path.basename((work_dir / 'last_checkpoint').read_text())


def files(work_dir):
    """Checkpoints and temporaries in the work dir (not logs, not configs)."""
    return sorted(
        name for name in os.listdir(work_dir)
        if name.endswith(('.pth', '.part')))


def test_sigkill_at_every_moment_of_a_save_then_resume(tmp_path,
                                                       tiny_image_folder,
                                                       teacher_ckpt):
    """One work dir, killed four times, resumed each time.

    With ``max_keep_ckpts=1`` (upstream deletes the only checkpoint before
    writing its successor): after each kill the pointer names a complete
    checkpoint, ``--resume`` continues from it, and what the killed save
    left behind does not pile up: its temporary file is removed by the next
    save, a checkpoint it had not pruned yet by the resumed run.
    """
    work_dir = tmp_path / 'work'

    def run(kill_epoch, at, resume=True):
        hooks = [] if at is None else [
            dict(type='KillDuringSaveHook', epoch=kill_epoch, at=at)
        ]
        return train(
            mgd_run(tmp_path, tiny_image_folder, teacher_ckpt, 5, hooks,
                    ['default_hooks.checkpoint.max_keep_ckpts=1']) +
            ['--work-dir', str(work_dir)] + (['--resume'] if resume else []))

    # Killed with epoch 2's bytes written under a temporary name.
    killed(run(2, 'checkpoint', resume=False))
    assert pointer(work_dir) == 'epoch_1.pth'
    left = files(work_dir)
    assert len(left) == 2 and left[1] == 'epoch_1.pth', left
    assert left[0].startswith('.epoch_2.pth.') and left[0].endswith('.part')
    load(work_dir / 'epoch_1.pth')  # complete

    # Killed with epoch 2 renamed into place, the pointer not yet moved:
    # the run continued from epoch 1, and its first save removed the
    # killed run's temporary.
    proc = killed(run(2, 'before_pointer'))
    assert resumed_epoch(proc) == 1
    assert pointer(work_dir) == 'epoch_1.pth'
    assert files(work_dir) == ['epoch_1.pth', 'epoch_2.pth']
    assert load(work_dir / 'epoch_2.pth')['meta']['epoch'] == 2

    # Killed while writing the pointer to epoch 3: epoch 2 was saved,
    # pointed to and epoch 1 pruned on the way.
    proc = killed(run(3, 'pointer'))
    assert resumed_epoch(proc) == 1
    assert pointer(work_dir) == 'epoch_2.pth'
    left = files(work_dir)
    assert left[1:] == ['epoch_2.pth', 'epoch_3.pth'], left
    assert (left[0].startswith('.last_checkpoint.')
            and left[0].endswith('.part')), left

    # Killed after the pointer moved to epoch 4, before epoch 3 was pruned.
    proc = killed(run(4, 'before_prune'))
    assert resumed_epoch(proc) == 2
    assert pointer(work_dir) == 'epoch_4.pth'
    assert files(work_dir) == ['epoch_3.pth', 'epoch_4.pth']

    # Resumed to the end: one checkpoint, nothing else left.
    proc = check(run(None, None))
    assert resumed_epoch(proc) == 4
    assert pointer(work_dir) == 'epoch_5.pth'
    assert files(work_dir) == ['epoch_5.pth']
    assert load(work_dir / 'epoch_5.pth')['meta']['epoch'] == 5


def assert_same_state(a, b, what):
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f'{what}: {key}'


def assert_same_optimizer(a, b):
    assert a['param_groups'] == b['param_groups']
    assert a['state'].keys() == b['state'].keys()
    assert len(a['state']) > 0
    for index in a['state']:
        assert_same_state(a['state'][index], b['state'][index],
                          f'optimizer state {index}')


@pytest.mark.parametrize('reducer', ['RandomDropReducer'])
def test_resumed_run_ends_exactly_as_the_uninterrupted_one(
        tmp_path, tiny_image_folder, teacher_ckpt, reducer):
    """Killed after epoch 1 of 3 and resumed: the same weights, matching
    buffers and optimizer state as without the kill.

    Matching before every epoch on a random subset (16 of 24 images) and
    the random drop reducer, whose draws come from the global generator:
    epochs 2 and 3 must draw exactly what the uninterrupted run drew.
    """
    options = [
        f'model.distiller.reducer.type={reducer}', 'randomness.seed=7',
        'randomness.deterministic=True'
    ]

    def run(work_dir, hooks, resume=False):
        return train(
            mgd_run(tmp_path, tiny_image_folder, teacher_ckpt, 3, hooks,
                    options) +
            ['--work-dir', str(tmp_path / work_dir)] +
            (['--resume'] if resume else []))

    check(
        run('straight',
            [dict(type='StateProbeHook', out_dir=str(tmp_path / 'straight'))]))
    killed(run('interrupted', [dict(type='KillAfterEpochHook', epoch=1)]))
    proc = check(
        run('interrupted',
            [dict(type='StateProbeHook', out_dir=str(tmp_path / 'resumed'))],
            resume=True))
    assert resumed_epoch(proc) == 1
    assert 'MGD matching for epoch 3' in proc.stdout + proc.stderr

    straight = load(tmp_path / 'straight' / 'after_train_rank0.pth')
    resumed = load(tmp_path / 'resumed' / 'after_train_rank0.pth')
    assert straight['epoch'] == resumed['epoch'] == 3
    state = straight['state_dict']
    assert int(state['matching_epoch']) == 3
    assert any(key.endswith('_reducer.assignment') for key in state)
    assert_same_state(state, resumed['state_dict'], 'state_dict')
    assert_same_optimizer(straight['optimizer'], resumed['optimizer'])
