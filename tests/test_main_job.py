"""The main job's steps: cached when done, resumed when interrupted.

tools/train.py and tools/test.py are replaced by a fake that writes what
they would (checkpoints, ``last_checkpoint``, the metrics file), so that
the orchestration of tools/run_main_job.py is tested in seconds; the real
tools are tested in test_train_tools.py.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT, FakeTools

sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import run_main_job  # noqa: E402


def student_run(work_dir, options=('randomness.seed=0', )):
    return run_main_job.Run('student alone', run_main_job.STUDENT,
                            str(work_dir), options)


def test_train_once_then_cached(tmp_path, monkeypatch):
    fake = FakeTools()
    monkeypatch.setattr(run_main_job, '_call', fake)
    run = student_run(tmp_path / 'student')
    assert run_main_job.train(run) == 'trained'
    assert len(fake.commands) == 1
    command = fake.commands[0]
    assert command[1:3] == ['tools/train.py', run_main_job.STUDENT]
    assert '--resume' not in command
    assert 'randomness.seed=0' in command
    assert osp.isfile(run.final_checkpoint)
    assert run_main_job.train(student_run(tmp_path / 'student')) == 'cached'
    assert len(fake.commands) == 1


def test_interrupted_training_resumes(tmp_path, monkeypatch):
    fake = FakeTools(interrupt_after=3)
    monkeypatch.setattr(run_main_job, '_call', fake)
    run = student_run(tmp_path / 'student')
    with pytest.raises(SystemExit):
        run_main_job.train(run)
    assert not osp.isfile(run.final_checkpoint)
    assert run_main_job.train(student_run(tmp_path / 'student')) == 'resumed'
    assert '--resume' in fake.commands[1]
    assert osp.isfile(run.final_checkpoint)


def test_a_work_dir_of_another_config_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(run_main_job, '_call', FakeTools())
    run_main_job.train(student_run(tmp_path / 'student'))
    other_seed = student_run(tmp_path / 'student', ['randomness.seed=1'])
    with pytest.raises(SystemExit, match='different config'):
        run_main_job.train(other_seed)


def test_a_student_of_a_retrained_teacher_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(run_main_job, '_call', FakeTools())
    teacher, mgd, _ = run_main_job.runs_for_seed(str(tmp_path), 0)
    run_main_job.train(teacher)
    run_main_job.train(mgd)
    assert any(f'model.teacher_ckpt={teacher.final_checkpoint}' == option
               for option in mgd.cfg_options)
    # The teacher checkpoint is rewritten (a new training).
    time.sleep(0.01)
    with open(teacher.final_checkpoint, 'w') as f:
        f.write('another teacher')
    _, mgd_again, _ = run_main_job.runs_for_seed(str(tmp_path), 0)
    with pytest.raises(SystemExit, match='different config, seed or teacher'):
        run_main_job.train(mgd_again)


def test_evaluation_is_cached_per_checkpoint(tmp_path, monkeypatch):
    fake = FakeTools(top1={'student': 81.5})
    monkeypatch.setattr(run_main_job, '_call', fake)
    run = student_run(tmp_path / 'student')
    run_main_job.train(run)
    assert run_main_job.evaluate(run, 'test') == 81.5
    command = fake.commands[-1]
    assert command[1:4] == [
        'tools/test.py', run_main_job.STUDENT, run.final_checkpoint
    ]
    assert run_main_job.evaluate(run, 'test') == 81.5
    assert len(fake.commands) == 2
    # A new checkpoint is evaluated again.
    fake.top1['student'] = 82.0
    time.sleep(0.01)
    with open(run.final_checkpoint, 'w') as f:
        f.write('retrained')
    assert run_main_job.evaluate(run, 'test') == 82.0
    assert len(fake.commands) == 3


def test_heldout_evaluation_reads_the_heldout_images(tmp_path, monkeypatch):
    fake = FakeTools(top1={'student': 80.0})
    monkeypatch.setattr(run_main_job, '_call', fake)
    run = student_run(tmp_path / 'student')
    run_main_job.train(run)
    run_main_job.evaluate(run, 'heldout')
    config = fake.commands[-1][2]
    assert config != run.config
    cfg = Config.fromfile(config)
    dataset = cfg.test_dataloader.dataset
    assert dataset.type == 'ClassBalancedSubset'
    assert dataset.start == 5000 and dataset.dataset.split == 'train'
    # Test and held-out results are separate.
    assert osp.isfile(osp.join(run.work_dir, 'eval_heldout.json'))
    assert not osp.isfile(osp.join(run.work_dir, 'eval_test.json'))


def test_reads_the_configs_in_a_fresh_process():
    # Nothing imported beforehand (this test process imported mgd_plugin
    # in conftest): the configs' `mmpretrain::` bases must still resolve.
    code = ('import run_main_job; print(run_main_job.Run("t", '
            'run_main_job.MGD, "w").max_epochs)')
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=osp.join(REPO_ROOT, 'tools'),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == '10'


def test_gap_closed():
    assert run_main_job.gap_closed(90.0, 80.0, 85.0) == pytest.approx(0.5)
    assert run_main_job.gap_closed(90.0, 80.0, 79.0) == pytest.approx(-0.1)


def test_main_runs_every_step_once_and_prints_the_table(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('MGD_PLUGIN_NO_VENV', '1')
    monkeypatch.chdir(tmp_path)  # main() changes to the repository root
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'misc'))
    import prepare_fashion_mnist
    monkeypatch.setattr(prepare_fashion_mnist, 'prepare',
                        lambda **kwargs: 'dst')
    fake = FakeTools(top1={
        'resnet18-w16': 90.0,
        'resnet18-w4': 86.0,
        'mgd-amp': 87.0
    })
    monkeypatch.setattr(run_main_job, '_call', fake)
    argv = ['--seeds', '0', '1', '--work-root', str(tmp_path)]
    run_main_job.main(argv)
    out = capsys.readouterr().out
    trainings = [c for c in fake.commands if c[1] == 'tools/train.py']
    assert len(trainings) == 6 and len(fake.commands) == 12
    # The students of seed 1 learn from the teacher of seed 1.
    seed1_mgd = [c for c in trainings if 'seed1' in c[4] and 'mgd' in c[2]]
    assert any('seed1' in o and 'teacher_ckpt' in o for o in seed1_mgd[0])
    assert 'gap closed by MGD' in out and '25.0%' in out
    results = json.load(open(osp.join(tmp_path, 'results_test.json')))
    assert results['1'] == dict(teacher=90.0, mgd=87.0, student=86.0)

    run_main_job.main(argv)
    assert len(fake.commands) == 12
    assert os.listdir(tmp_path)
