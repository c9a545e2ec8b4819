"""tools/train.py, --resume and tools/dist_train.sh on real (tiny) runs.

Each run is a separate process, launched exactly as a user would.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from torch.distributed.elastic.utils.distributed import get_free_port

from conftest import REPO_ROOT, save_model_checkpoint

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'kd_tiny_resnet.py')
TESTS_DIR = osp.dirname(__file__)


def run(cmd, timeout=600, **env):
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT, TESTS_DIR,
         full_env.get('PYTHONPATH', '')])
    full_env['PYTHON'] = sys.executable
    full_env['OMP_NUM_THREADS'] = '1'
    full_env.update(env)
    return subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)


def train(args, **env):
    config, args = args[0], args[1:]
    return run([sys.executable, 'tools/train.py', config] + args, **env)


def check(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(CONFIG).teacher)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    return save_model_checkpoint(teacher, str(path))


def config_with_hooks(directory, probe_dir=None, extra=()):
    """A config inheriting CONFIG that adds the test's probe hooks."""
    hooks = []
    if probe_dir is not None:
        hooks.append(dict(type='StateProbeHook', out_dir=str(probe_dir)))
    hooks.extend(extra)
    path = osp.join(str(directory), f'config_{len(os.listdir(directory))}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = [{CONFIG!r}]\n"
                "custom_imports = dict(imports=['mgd_plugin', 'probe_hooks'],"
                " allow_failed_imports=False)\n"
                f"custom_hooks = {hooks!r}\n")
    return path


def options(data_root, teacher_ckpt, probe_dir=None, max_epochs=2, extra=()):
    """[config, --cfg-options ...] for a run on the tiny data."""
    config = config_with_hooks(
        osp.dirname(str(teacher_ckpt)), probe_dir, extra)
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'model.teacher_ckpt={teacher_ckpt}',
        f'train_cfg.max_epochs={max_epochs}',
    ]
    return [config, '--cfg-options'] + opts


def dist_args(opts):
    """dist_train.sh takes CONFIG NGPUS first."""
    return [opts[0], '2'] + opts[1:]


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def load(path):
    # The default, weights_only=True: what MMEngine's resume does too.
    return torch.load(path, map_location='cpu')


def test_train_then_resume_continues_at_epoch_3(tmp_path, tiny_image_folder,
                                                teacher_ckpt):
    work_dir = tmp_path / 'work'
    check(
        train(
            options(tiny_image_folder, teacher_ckpt, tmp_path / 'first') +
            ['--work-dir', str(work_dir)]))
    for epoch in (1, 2):
        assert (work_dir / f'epoch_{epoch}.pth').is_file()
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_2.pth')

    # Safe loading (torch >= 2.6 default) reads our checkpoints.
    saved = load(work_dir / 'epoch_2.pth')
    assert saved['meta']['epoch'] == 2
    assert 'message_hub' in saved and 'optimizer' in saved

    proc = check(
        train(
            options(
                tiny_image_folder,
                teacher_ckpt,
                tmp_path / 'resumed',
                max_epochs=3) +
            ['--work-dir', str(work_dir), '--resume']))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in log
    assert 'Epoch(train) [1]' not in log
    assert 'Epoch(train) [3]' in log

    resumed = load(tmp_path / 'resumed' / 'before_train_rank0.pth')
    assert resumed['epoch'] == 2
    assert_same_tensors(resumed['state_dict'], saved['state_dict'])
    saved_momentum = saved['optimizer']['state']
    resumed_momentum = resumed['optimizer']['state']
    assert saved_momentum.keys() == resumed_momentum.keys()
    assert len(saved_momentum) > 0
    for key in saved_momentum:
        assert torch.equal(saved_momentum[key]['momentum_buffer'],
                           resumed_momentum[key]['momentum_buffer'])

    # It trained on from there: epoch 3 changed the parameters.
    final = load(tmp_path / 'resumed' / 'after_train_rank0.pth')
    assert final['epoch'] == 3
    assert (work_dir / 'epoch_3.pth').is_file()
    assert not torch.equal(final['state_dict']['architecture.head.fc.weight'],
                           saved['state_dict']['architecture.head.fc.weight'])


def test_resume_from_explicit_checkpoint(tmp_path, tiny_image_folder,
                                         teacher_ckpt):
    work_dir = tmp_path / 'work'
    check(
        train(
            options(tiny_image_folder, teacher_ckpt, max_epochs=2) +
            ['--work-dir', str(work_dir)]))
    proc = check(
        train(
            options(tiny_image_folder, teacher_ckpt, max_epochs=2) + [
                '--work-dir',
                str(tmp_path / 'other'), '--resume',
                str(work_dir / 'epoch_1.pth')
            ]))
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert (tmp_path / 'other' / 'epoch_2.pth').is_file()


def test_dist_train_two_cpu_processes_end_identical(tmp_path,
                                                    tiny_image_folder,
                                                    teacher_ckpt):
    probe = tmp_path / 'probe'
    check(
        run(['bash', 'tools/dist_train.sh'] +
            dist_args(options(tiny_image_folder, teacher_ckpt, probe)) +
            ['--work-dir', str(tmp_path / 'work')],
            PORT=str(get_free_port())))
    rank0 = load(probe / 'after_train_rank0.pth')
    rank1 = load(probe / 'after_train_rank1.pth')
    assert rank0['world_size'] == rank1['world_size'] == 2
    assert rank0['epoch'] == rank1['epoch'] == 2
    # Parameters, not buffers: each rank keeps its own BN running statistics
    # (MMEngine's DDP does not broadcast buffers).
    assert_same_tensors(rank0['parameters'], rank1['parameters'])
    # ... and they did train: the parameters moved from the start.
    start = load(probe / 'before_train_rank0.pth')
    assert not torch.equal(start['state_dict']['architecture.head.fc.weight'],
                           rank0['state_dict']['architecture.head.fc.weight'])


@pytest.mark.parametrize('fsync_call', [1, 2], ids=['checkpoint', 'pointer'])
def test_interrupted_save_never_becomes_latest(tmp_path, tiny_image_folder,
                                               teacher_ckpt, fsync_call):
    # max_keep_ckpts=1 is the hard case: upstream deletes the only
    # checkpoint before writing its successor.
    work_dir = tmp_path / 'work'
    crash = dict(type='CrashDuringSaveHook', epoch=2, fsync_call=fsync_call)
    keep_one = 'default_hooks.checkpoint.max_keep_ckpts=1'
    proc = train(
        options(tiny_image_folder, teacher_ckpt, extra=[crash]) +
        [keep_one, '--work-dir', str(work_dir)])
    assert proc.returncode != 0
    assert 'simulated kill while saving' in proc.stderr
    assert (work_dir / 'epoch_1.pth').is_file()
    # A kill while writing the checkpoint leaves nothing of it; a kill while
    # writing the pointer leaves the complete checkpoint, not yet pointed to.
    assert (work_dir / 'epoch_2.pth').exists() == (fsync_call == 2)
    assert not [p for p in os.listdir(work_dir) if p.endswith('.part')]
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_1.pth')

    proc = check(
        train(
            options(tiny_image_folder, teacher_ckpt) +
            [keep_one, '--work-dir',
             str(work_dir), '--resume']))
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert load(work_dir / 'epoch_2.pth')['meta']['epoch'] == 2
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_2.pth')
    # Pruning still happens, once its successor is safe.
    assert not (work_dir / 'epoch_1.pth').exists()


@pytest.mark.parametrize('override, message', [
    ('model.teacher_ckpt=/no/such/teacher.pth',
     "model.teacher_ckpt: checkpoint file '/no/such/teacher.pth' does not "
     'exist'),
    ('train_dataloader.dataset.data_root=/no/such/data',
     "train_dataloader.dataset.data_root: directory '/no/such/data' does "
     'not exist'),
    ('model.distiller.distill_losses.loss_kl.type=NoSuchLoss',
     'NoSuchLoss is not in the'),
])
def test_bad_config_fails_before_training(tmp_path, tiny_image_folder,
                                          teacher_ckpt, override, message):
    work_dir = tmp_path / 'work'
    proc = train(
        options(tiny_image_folder, teacher_ckpt) +
        [override, '--work-dir', str(work_dir)])
    assert proc.returncode != 0
    assert message in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    assert not (work_dir.exists()
                and [p for p in os.listdir(work_dir) if p.endswith('.pth')])


def test_test_tool_evaluates_student(tmp_path, tiny_image_folder,
                                     teacher_ckpt):
    work_dir = tmp_path / 'work'
    check(
        train(
            options(tiny_image_folder, teacher_ckpt, max_epochs=1) +
            ['--work-dir', str(work_dir)]))
    out = tmp_path / 'metrics.json'
    config, *cfg_options = options(tiny_image_folder, teacher_ckpt)
    proc = check(
        run([
            sys.executable, 'tools/test.py', config,
            str(work_dir / 'epoch_1.pth'), '--work-dir',
            str(tmp_path / 'test'), '--out',
            str(out)
        ] + cfg_options))
    assert 'accuracy/top1' in out.read_text(), proc.stdout[-2000:]
