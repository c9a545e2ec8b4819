"""The Fashion-MNIST results runner: its statistics, that it shares the
main job's cached runs, the MoCo-v2 runs and their evaluations, and that
runs side by side start only after what they need."""
import json
import os
import os.path as osp
import sys
import threading

import pytest
from scipy import stats

from conftest import REPO_ROOT, FakeTools

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import benchmark_fashion_mnist as bench  # noqa: E402
import run_main_job as main_job  # noqa: E402

TOP1 = {
    'teacher': {
        0: 90.0,
        1: 91.0,
        2: 89.0
    },
    'student alone': {
        0: 80.0,
        1: 82.0,
        2: 81.0
    },
    'MGD-AMP': {
        0: 85.0,
        1: 86.5,
        2: 84.0
    },
}


def test_summary_statistics():
    summary = bench.summarise(TOP1, list(TOP1))
    mgd = summary['MGD-AMP']
    assert mgd['mean'] == pytest.approx(85.1666666)
    assert mgd['std'] == pytest.approx(1.2583057, rel=1e-6)  # n - 1
    # Per seed: (85-80)/(90-80), (86.5-82)/(91-82), (84-81)/(89-81).
    assert mgd['gap_closed_percent'] == pytest.approx([50.0, 50.0, 37.5])
    assert mgd['gap_closed_mean'] == pytest.approx(45.8333333)
    expected = stats.ttest_rel([85.0, 86.5, 84.0], [80.0, 82.0, 81.0])
    assert mgd['paired_t_vs_alone']['p'] == pytest.approx(expected.pvalue)
    assert 'gap_closed_mean' not in summary['student alone']
    assert summary['_gap']['per_seed'] == [10.0, 9.0, 8.0]
    table = bench.format_table(summary, list(TOP1), 'test')
    assert '| MGD-AMP | 85.00 | 86.50 | 84.00 | 85.17 ± 1.26 | 46% ± 7% |' \
        in table


def test_one_seed_has_no_spread():
    one = {name: {0: values[0]} for name, values in TOP1.items()}
    summary = bench.summarise(one, list(one))
    assert summary['MGD-AMP']['std'] is None
    assert 'paired_t_vs_alone' not in summary['MGD-AMP']
    assert '| MGD-AMP | 85.00 | 50% |' in bench.format_table(
        summary, list(one), 'test')


def test_runs_are_the_main_jobs(tmp_path):
    root = str(tmp_path)
    runs = bench.runs_for_seed(root, 1, list(bench.METHODS))
    teacher, mgd, alone = main_job.runs_for_seed(root, 1)
    for ours, theirs in ((runs['teacher'], teacher), (runs['MGD-AMP'], mgd),
                         (runs['student alone'], alone)):
        assert (ours.config, ours.work_dir, ours.cfg_options,
                ours.depends_on) == (theirs.config, theirs.work_dir,
                                     theirs.cfg_options, theirs.depends_on)
    # Every student learns from this seed's teacher, with this seed.
    for name, run in runs.items():
        assert osp.isfile(osp.join(REPO_ROOT, run.config)), run.config
        assert 'randomness.seed=1' in run.cfg_options
        if name not in ('teacher', 'student alone'):
            assert run.depends_on == [teacher.final_checkpoint]
            assert (f'model.teacher_ckpt={teacher.final_checkpoint}'
                    in run.cfg_options)
    assert len({run.work_dir for run in runs.values()}) == len(runs)


def test_options():
    quick = bench.parse_args(['--quick'])
    assert quick.seeds == [0] and quick.moco_seeds == [0]
    assert quick.methods == list(bench.QUICK_METHODS)
    assert quick.out.endswith('fashion_mnist_quick_test.json')
    assert quick.moco_out.endswith('fashion_mnist_moco_quick_test.json')
    full = bench.parse_args(['--eval-split', 'heldout'])
    assert full.seeds == [0, 1, 2] and full.methods == list(bench.METHODS)
    assert full.moco_seeds == [0, 1]
    assert full.parts == ['classification', 'moco']
    assert full.moco_out.endswith('fashion_mnist_moco_heldout.json')
    with pytest.raises(SystemExit):
        bench.parse_args(['--methods', 'teacher', 'KD'])
    with pytest.raises(SystemExit):
        bench.parse_args(['--jobs', '0'])


@pytest.mark.parametrize('quick', [False, True])
def test_moco_runs(tmp_path, quick):
    root = str(tmp_path)
    runs = bench.moco_runs_for_seed(root, 1, quick)
    assert list(runs) == ['teacher', 'student alone', 'MGD-AMP']
    teacher = runs['teacher'][0]
    epochs = bench.QUICK_MOCO_EPOCHS if quick else 10
    for name, (pretraining, linear) in runs.items():
        assert 'randomness.seed=1' in pretraining.cfg_options
        assert pretraining.max_epochs == epochs
        assert pretraining.cfg.param_scheduler[0].T_max == epochs
        assert pretraining.work_dir.startswith(
            osp.join(root, 'moco_quick' if quick else 'moco', 'seed1'))
        # The linear evaluation reads this pretraining's last checkpoint,
        # a backbone of its width, and never validates during training.
        init_cfg = linear.cfg.model.backbone.init_cfg
        assert init_cfg.checkpoint == pretraining.final_checkpoint
        assert pretraining.final_checkpoint.endswith(f'epoch_{epochs}.pth')
        assert linear.depends_on == [pretraining.final_checkpoint]
        assert linear.cfg.val_dataloader is None
        assert (linear.cfg.model.backbone.base_channels ==
                pretraining.cfg.model.backbone.base_channels)
        assert linear.max_epochs == 10
    mgd = runs['MGD-AMP'][0]
    assert mgd.depends_on == [teacher.final_checkpoint]
    assert mgd.cfg.model.teacher_ckpt == teacher.final_checkpoint
    assert runs['student alone'][0].depends_on == []
    dirs = [r.work_dir for pair in runs.values() for r in pair]
    assert len(set(dirs)) == len(dirs)


def test_side_by_side_runs_a_task_after_what_it_needs():
    side = bench.SideBySide(2)
    started_b = threading.Event()
    order = []

    def slow_a():
        # B does not need A and starts beside it; A ends after B started.
        assert started_b.wait(10)
        order.append('a')
        return 1

    def b():
        started_b.set()
        order.append('b')
        return 2

    a_future = side.submit(slow_a)
    b_future = side.submit(b)
    c_future = side.submit(lambda: order.append('c') or 3, after=[a_future])
    side.wait()
    assert order.index('c') > order.index('a')
    assert [f.result() for f in (a_future, b_future, c_future)] == [1, 2, 3]


def test_side_by_side_stops_at_the_first_failure():
    side = bench.SideBySide(1)
    ran = []

    def fail():
        raise SystemExit('[main job] failed (exit 1): train')

    failing = side.submit(fail)
    side.submit(lambda: ran.append('needs it'), after=[failing])
    side.submit(lambda: ran.append('later'))
    with pytest.raises(SystemExit, match='failed'):
        side.wait()
    assert 'needs it' not in ran


def run_main(tmp_path, monkeypatch, jobs):
    """bench.main(--quick) with FakeTools; (argv, fake, trained configs,
    results folder)."""
    monkeypatch.setenv('MGD_PLUGIN_NO_VENV', '1')
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'misc'))
    import prepare_fashion_mnist
    monkeypatch.setattr(prepare_fashion_mnist, 'prepare',
                        lambda **kwargs: 'dst')
    # Work dir prefixes: the linear evaluations' before the pretrainings'.
    fake = FakeTools(
        top1={
            'linear_mocov2_resnet18-w16': 80.0,
            'linear_mocov2_resnet18-w4': 70.0,
            'linear_mocov2-mgd': 75.0,
            'resnet18-w16': 90.0,
            'resnet18-w4': 86.0,
            'kd_': 88.0,
            'mgd-amp': 87.0,
        },
        knn={
            'mocov2_resnet18-w16': {
                20: 78.0,
                200: 77.0
            },
            'mocov2_resnet18-w4': {
                20: 60.0,
                200: 59.0
            },
            'mocov2-mgd': {
                20: 69.0,
                200: 68.0
            },
        })
    trained = []
    real_fake = fake.train

    def train(command):
        # A student's teacher checkpoint is there when it starts.
        for option in command:
            if option.startswith('model.teacher_ckpt='):
                assert osp.isfile(option.split('=', 1)[1]), option
        trained.append(command[2])
        return real_fake(command)

    fake.train = train
    monkeypatch.setattr(main_job, '_call', fake)
    out_dir = tmp_path / 'results'
    argv = [
        '--quick', '--work-root',
        str(tmp_path / 'runs'), '--out-dir',
        str(out_dir), '--jobs',
        str(jobs)
    ]
    bench.main(argv)
    return argv, fake, trained, out_dir


def test_main_runs_both_parts_and_writes_their_records(tmp_path, monkeypatch,
                                                       capsys):
    argv, fake, trained, out_dir = run_main(tmp_path, monkeypatch, jobs=2)
    printed = capsys.readouterr().out

    moco = json.load(open(out_dir / 'fashion_mnist_moco_quick_test.json'))
    assert moco['benchmark'] == 'fashion_mnist_moco'
    assert moco['pretraining_epochs'] == bench.QUICK_MOCO_EPOCHS
    summary = moco['figures']['summary']
    assert summary['linear']['MGD-AMP']['top1'] == [75.0]
    assert summary['linear']['MGD-AMP']['gap_closed_percent'] == [50.0]
    assert summary['knn_k200']['MGD-AMP']['gap_closed_percent'] == [50.0]
    assert summary['knn_k20']['teacher']['top1'] == [78.0]
    runs = moco['figures']['runs']
    assert {r['method'] for r in runs} == set(bench.MOCO_METHODS)
    assert all(r['linear_top1'] in (70.0, 75.0, 80.0) for r in runs)
    classification = json.load(open(out_dir / 'fashion_mnist_quick_test.json'))
    assert classification['figures']['summary']['KD']['top1'] == [88.0]
    assert classification['jobs'] == 2
    assert 'MoCo-v2, linear top-1' in printed and '200-NN' in printed

    # 4 classification + 3 MoCo trainings + 3 linear evaluations, each
    # once; 4 + 3 tests, 3 k-NN; side by side, each logs in its work dir.
    assert len(trained) == 10
    tools = [c[1] for c in fake.commands]
    assert tools.count('tools/test.py') == 7
    assert tools.count('tools/analysis_tools/knn_eval.py') == 3
    threads = max(1, (os.cpu_count() or 1) // 2)
    for command, options in zip(fake.commands, fake.options):
        assert options['threads'] == threads
        work_dir = osp.dirname(options['log_path'])
        assert work_dir in ' '.join(command)

    assert len(fake.commands) == 10 + 7 + 3

    bench.main(argv)  # everything cached: nothing runs again
    assert len(fake.commands) == 20


def test_teachers_of_both_parts_start_first(tmp_path, monkeypatch):
    """One at a time, runs start in the order they are submitted: the
    teachers of both parts first, so that no lane waits for a teacher."""
    _, _, trained, _ = run_main(tmp_path, monkeypatch, jobs=1)
    assert sorted(trained[:2]) == sorted(
        [bench.MOCO_METHODS['teacher'][0], bench.METHODS['teacher']])
