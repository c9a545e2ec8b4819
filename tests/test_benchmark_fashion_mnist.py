"""The Fashion-MNIST results runner: its statistics, and that it shares the
main job's cached runs."""
import os.path as osp
import sys

import pytest
from scipy import stats

from conftest import REPO_ROOT

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
    assert quick.seeds == [0]
    assert quick.methods == list(bench.QUICK_METHODS)
    assert quick.out.endswith('fashion_mnist_quick_test.json')
    full = bench.parse_args(['--eval-split', 'heldout'])
    assert full.seeds == [0, 1, 2] and full.methods == list(bench.METHODS)
    with pytest.raises(SystemExit):
        bench.parse_args(['--methods', 'teacher', 'KD'])
