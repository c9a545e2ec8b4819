"""tools/analysis_tools/plot_logs.py: what it reads from MMEngine JSON logs
and what it draws."""
import os.path as osp
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, line_data, write_scalars_log

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import plot_logs  # noqa: E402

ITERS_PER_EPOCH = 50


def train_lines(epochs, offset=0.0, interval=20, keys=('loss', )):
    """MMEngine's training lines: logged at inner iterations 20, 40 of each
    epoch of ITERS_PER_EPOCH iterations; ``step`` = ``iter``."""
    lines = []
    for epoch in epochs:
        for inner in range(interval, ITERS_PER_EPOCH + 1, interval):
            it = (epoch - 1) * ITERS_PER_EPOCH + inner
            line = {key: offset + 1000 * k + it for k, key in enumerate(keys)}
            line.update(lr=0.1, time=0.5, epoch=epoch, iter=it, step=it)
            lines.append(line)
    return lines


def val_line(epoch, top1):
    return {'accuracy/top1': top1, 'time': 0.2, 'step': epoch}


def matching_lines(epoch, changed):
    return [{
        f'mgd/mgd{k}_reducer/mean_cost': 1.0 + k + epoch / 10,
        f'mgd/mgd{k}_reducer/changed': changed,
        'step': epoch
    } for k in range(2)]


@pytest.fixture
def two_runs(tmp_path):
    """Run A in one piece; run B killed in epoch 3 and resumed from its
    epoch-2 checkpoint with a longer log interval, in two timestamp
    dirs."""
    run_a = str(tmp_path / 'run_a')
    write_scalars_log(
        run_a, '20260101_100000',
        train_lines([1, 2, 3],
                    keys=('loss', 'distill.loss_mgd0', 'distill.loss_mgd1')) +
        [val_line(e, 50.0 + e)
         for e in (1, 2, 3)] + matching_lines(1, 0.0) + matching_lines(2, 0.5))
    run_b = str(tmp_path / 'run_b')
    # The first piece logged epoch 3 at inner iterations 20 and 40 before it
    # was killed; the resumed piece logs every 40 iterations.
    write_scalars_log(
        run_b, '20260101_090000',
        train_lines([1, 2, 3], offset=0.5) +
        [val_line(e, 40.0 + e) for e in (1, 2, 3)])
    write_scalars_log(
        run_b, '20260101_120000',
        train_lines([3, 4], offset=0.25, interval=40) +
        [val_line(e, 60.0 + e) for e in (3, 4)])
    # Not a timestamp dir: ignored.
    write_scalars_log(run_b, 'eval_test', [val_line(0, 99.0)])
    return run_a, run_b


def test_resumed_run_is_joined_in_time_order(two_runs):
    run = plot_logs.read_run(two_runs[1])
    assert run.name == 'run_b'
    assert [osp.basename(osp.dirname(osp.dirname(f)))
            for f in run.files] == ['20260101_090000', '20260101_120000']
    loss = run.series['loss']
    # Epochs 1-2 from the first piece; epoch 3 on from the resumed piece,
    # whose interval skips inner iteration 20: the killed piece's line
    # there (iteration 120) is gone too.
    assert loss.steps.tolist() == [20, 40, 70, 90, 140, 190]
    assert loss.values.tolist() == [20.5, 40.5, 70.5, 90.5, 140.25, 190.25]
    top1 = run.series['accuracy/top1']
    assert top1.per_epoch
    assert top1.steps.tolist() == [1, 2, 3, 4]
    assert top1.values.tolist() == [41.0, 42.0, 63.0, 64.0]
    # Validation's time has the name of a training key.
    assert run.series['val/time'].values.tolist() == [0.2] * 4
    assert run.series['time'].steps.tolist() == loss.steps.tolist()
    assert run.iters_per_epoch == ITERS_PER_EPOCH


def test_plotted_lines_are_the_logged_values(two_runs, tmp_path):
    runs = [plot_logs.read_run(path) for path in two_runs]
    figure = plot_logs.plot_runs(
        runs, ['loss', 'accuracy/top1'], axis='iter', legend=['A', 'B'])
    loss_ax, top1_ax = figure.axes
    lines = line_data(loss_ax)
    assert sorted(lines) == ['A', 'B']
    x, y = lines['A']
    iters = [20, 40, 70, 90, 120, 140]
    np.testing.assert_array_equal(x, iters)
    np.testing.assert_array_equal(y, iters)
    np.testing.assert_array_equal(lines['B'][1],
                                  [20.5, 40.5, 70.5, 90.5, 140.25, 190.25])
    # Per-epoch values at the epoch's last iteration.
    x, y = line_data(top1_ax)['A']
    np.testing.assert_array_equal(x, [50, 100, 150])
    np.testing.assert_array_equal(y, [51.0, 52.0, 53.0])
    assert loss_ax.get_ylabel() == 'loss'
    assert top1_ax.get_xlabel() == 'iter'


def test_epoch_axis_puts_each_epoch_in_its_interval(two_runs):
    run = plot_logs.read_run(two_runs[0])
    figure = plot_logs.plot_runs([run], ['loss', 'accuracy/top1'])
    loss_ax, top1_ax = figure.axes
    x, _ = line_data(loss_ax)['loss']
    np.testing.assert_allclose(x, np.array([20, 40, 70, 90, 120, 140]) / 50)
    x, _ = line_data(top1_ax)['accuracy/top1']
    np.testing.assert_array_equal(x, [1, 2, 3])
    assert top1_ax.get_xlabel() == 'epoch'


def test_glob_keys_share_a_panel(two_runs):
    runs = [plot_logs.read_run(path) for path in two_runs]
    with pytest.warns(UserWarning) as record:
        figure = plot_logs.plot_runs(
            runs, ['distill.loss_mgd*', 'mgd/*/changed'], axis='iter')
    # run_b has neither: said for each panel, with its files.
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 2
    for message, pattern in zip(messages,
                                ('distill.loss_mgd*', 'mgd/*/changed')):
        assert message.startswith('run_b (')
        assert '20260101_120000' in message
        assert f'has no key matching {pattern!r}' in message
    losses, changed = figure.axes
    lines = line_data(losses)
    # Only run_a has the MGD losses; every run's name and the key.
    assert sorted(lines) == [
        'run_a: distill.loss_mgd0', 'run_a: distill.loss_mgd1'
    ]
    np.testing.assert_array_equal(lines['run_a: distill.loss_mgd1'][1],
                                  2000 + np.array([20, 40, 70, 90, 120, 140]))
    lines = line_data(changed)
    assert sorted(lines) == [
        'run_a: mgd/mgd0_reducer/changed', 'run_a: mgd/mgd1_reducer/changed'
    ]
    x, y = lines['run_a: mgd/mgd1_reducer/changed']
    np.testing.assert_array_equal(x, [50, 100])
    np.testing.assert_array_equal(y, [0.0, 0.5])


def test_smoothing_is_a_trailing_mean(two_runs):
    run = plot_logs.read_run(two_runs[0])
    figure = plot_logs.plot_runs([run], ['loss'], axis='iter', window=2)
    _, y = line_data(figure.axes[0])['loss']
    np.testing.assert_allclose(y, [20, 30, 55, 80, 105, 130])
    # Per-epoch values are not smoothed.
    figure = plot_logs.plot_runs([run], ['accuracy/top1'], window=2)
    _, y = line_data(figure.axes[0])['accuracy/top1']
    np.testing.assert_array_equal(y, [51.0, 52.0, 53.0])


def test_missing_key_names_the_runs_and_their_keys(two_runs):
    runs = [plot_logs.read_run(path) for path in two_runs]
    with pytest.raises(ValueError) as error:
        plot_logs.plot_runs(runs, ['loss', 'loss_contrastive'])
    message = str(error.value)
    assert "--keys 'loss_contrastive' matches no scalar of any run" in message
    assert 'run_b (' in message and '20260101_120000' in message
    assert 'accuracy/top1, loss, lr, time, val/time' in message


def test_inputs_that_are_not_logs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='has no MMEngine log'):
        plot_logs.read_run(str(tmp_path))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1, "step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r'bad.json, line 2: not JSON'):
        plot_logs.read_run(str(bad))


def test_command_line_writes_the_figure(two_runs, tmp_path, capsys):
    out = str(tmp_path / 'curves.png')
    timestamp_dir = osp.join(two_runs[1], '20260101_120000')
    # The resumed piece alone has no MGD losses: a warning, not an error.
    with pytest.warns(UserWarning, match='has no key matching'):
        assert plot_logs.main([
            two_runs[0], timestamp_dir, '--keys', 'loss', 'distill.loss_mgd*',
            '--legend', 'A', 'B', '--title', 'two runs', '--x', 'iter',
            '--smooth', '2', '--out', out
        ]) == 0
    with open(out, 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    assert plot_logs.main([two_runs[0], '--keys', 'nope', '--out', out]) == 1
    assert "'nope' matches no scalar" in capsys.readouterr().err


def test_iteration_based_run_has_no_epoch_axis(tmp_path):
    lines = [dict(loss=1.0 / it, iter=it, step=it) for it in (10, 20, 30)]
    path = write_scalars_log(str(tmp_path / 'iters'), '20260101_100000', lines)
    run = plot_logs.read_run(path)
    assert run.name == 'iters' and run.iters_per_epoch is None
    figure = plot_logs.plot_runs([run], ['loss'])
    x, y = line_data(figure.axes[0])['loss']
    np.testing.assert_array_equal(x, [10, 20, 30])
    assert figure.axes[0].get_xlabel() == 'iter'
    with pytest.raises(
            ValueError,
            match='iters/20260101_100000/vis_data/'
            r'scalars.json have no "epoch".*--x iter'):
        plot_logs.plot_runs([run], ['loss'], axis='epoch')


def test_moco_mgd_command_of_the_readme(tmp_path):
    """MoCoMGD logs ``loss_contrastive`` and ``distill.loss_mgd{k}``
    (tests/test_moco_mgd_train.py checks those names in a real run)."""
    keys = ('loss', 'loss_contrastive') + tuple(f'distill.loss_mgd{k}'
                                                for k in range(4))
    work_dir = str(tmp_path / 'mgd18')
    write_scalars_log(work_dir, '20260101_100000',
                      train_lines([1, 2], keys=keys))
    out = str(tmp_path / 'moco_losses.png')
    assert plot_logs.main([
        work_dir, '--keys', 'loss_contrastive', 'distill.loss_mgd*', '--out',
        out
    ]) == 0
    figure = plot_logs.plot_runs([plot_logs.read_run(work_dir)],
                                 ['loss_contrastive', 'distill.loss_mgd*'])
    contrastive, mgd = figure.axes
    assert list(line_data(contrastive)) == ['loss_contrastive']
    assert list(line_data(mgd)) == [f'distill.loss_mgd{k}' for k in range(4)]
    np.testing.assert_array_equal(
        line_data(mgd)['distill.loss_mgd3'][1],
        5000 + np.array([20, 40, 70, 90]))
