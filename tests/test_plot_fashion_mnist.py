"""tools/analysis_tools/plot_fashion_mnist.py: the README figures from a
results file, the runs' logs and a real MGD checkpoint."""
import copy
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmrazor.registry import MODELS

from conftest import REPO_ROOT, line_data, write_scalars_log

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import plot_fashion_mnist as figures  # noqa: E402

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'mgd_tiny_resnet.py')
TOP1 = {
    'teacher': [90.0, 91.0],
    'student alone': [80.0, 81.0],
    'KD': [82.0, 82.5],
    'MGD-AMP': [85.0, 84.0],
}
WORK_DIRS = {
    'teacher': 'resnet-w16',
    'student alone': 'resnet-w4',
    'KD': 'kd_resnet-w16-w4',
    'MGD-AMP': 'mgd-amp_resnet-w16-w4',
}
ITERS = 10  # per epoch, a line every 5


def tiny_mgd(seed):
    """The tests' smallest MGD-AMP (4 positions, 4 -> 16 ... 32 -> 128
    channels) after one matching pass on random images."""
    from mmpretrain.structures import DataSample

    torch.manual_seed(seed)
    algo = MODELS.build(copy.deepcopy(Config.fromfile(CONFIG).model))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    data = dict(
        inputs=list(images),
        data_samples=[DataSample().set_gt_label(i % 3) for i in range(4)])
    algo.matching_pass([data], 4, show_progress=False, epoch=1)
    return algo


def training_lines(keys, epochs=2):
    """``key``'s value at iteration ``it`` is ``base + it / 100``."""
    lines = []
    for it in range(5, epochs * ITERS + 1, 5):
        line = {key: base + it / 100 for key, base in keys.items()}
        line.update(epoch=(it - 1) // ITERS + 1, iter=it, step=it)
        lines.append(line)
    return lines


@pytest.fixture(scope='module')
def benchmark(tmp_path_factory):
    """A results file of two seeds, the logs of their runs, and seed 1's
    MGD-AMP checkpoints of epochs 1 and 2 (different matchings)."""
    root = str(tmp_path_factory.mktemp('repo'))
    runs = []
    for seed in (0, 1):
        for method, name in WORK_DIRS.items():
            work_dir = osp.join('work_dirs', 'main_job', f'seed{seed}', name)
            runs.append(
                dict(
                    method=method,
                    seed=seed,
                    work_dir=work_dir,
                    top1=TOP1[method][seed]))
            if method == 'teacher':
                keys = dict(loss=3.0)
            elif method == 'student alone':
                keys = dict(loss=2.0 + seed)
            elif method == 'KD':
                keys = {'student.loss': 1.5, 'distill.loss_kd': 0.5}
            else:
                keys = {
                    'student.loss': 1.0 + seed,
                    'distill.loss_mgd0': 0.25,
                    'distill.loss_mgd1': 0.5
                }
            lines = training_lines(keys)
            if method == 'MGD-AMP':
                for epoch in (1, 2):
                    for k in range(2):
                        lines.append({
                            f'mgd/mgd{k}_reducer/mean_cost': 1 + k + epoch,
                            f'mgd/mgd{k}_reducer/solve_time': 0.01,
                            'step': epoch
                        })
                        if epoch > 1:
                            lines[-1][f'mgd/mgd{k}_reducer/changed'] = \
                                0.25 * (k + 1) + seed
            write_scalars_log(
                osp.join(root, work_dir), '20260101_100000', lines)
    mgd_dir = osp.join(root, 'work_dirs', 'main_job', 'seed1',
                       WORK_DIRS['MGD-AMP'])
    final = tiny_mgd(seed=1)
    for epoch, algo in ((1, tiny_mgd(seed=2)), (2, final)):
        torch.save({
            'meta': dict(epoch=epoch),
            'state_dict': algo.state_dict()
        }, osp.join(mgd_dir, f'epoch_{epoch}.pth'))
    # What benchmark_fashion_mnist.summarise writes, for these numbers.
    summary = {}
    for method, values in TOP1.items():
        summary[method] = dict(
            seeds=[0, 1],
            top1=values,
            mean=float(np.mean(values)),
            std=float(np.std(values, ddof=1)))
    summary['_gap'] = dict(per_seed=[10.0, 10.0], mean=10.0, std=0.0)
    path = osp.join(root, 'results.json')
    with open(path, 'w') as file:
        json.dump(
            dict(eval_split='test', figures=dict(runs=runs, summary=summary)),
            file)
    return root, path, final


def test_all_figures_are_written(benchmark, tmp_path, capsys):
    root, results, _ = benchmark
    out_dir = str(tmp_path / 'figures')
    assert figures.main(
        [results, '--out-dir', out_dir, '--seed', '1', '--root', root]) == 0
    assert sorted(os.listdir(out_dir)) == sorted(figures.FIGURES.values())
    for name in figures.FIGURES.values():
        with open(osp.join(out_dir, name), 'rb') as file:
            assert file.read(8) == b'\x89PNG\r\n\x1a\n', name
    assert capsys.readouterr().out.count('wrote ') == 4


def test_accuracy_figure_shows_every_seed_and_the_references(benchmark):
    _, results, _ = benchmark
    figure = figures.accuracy_figure(figures.load_results(results))
    (ax, ) = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ['KD', 'MGD-AMP']
    artists = {
        artist.get_gid(): artist
        for artist in ax.get_children() if artist.get_gid()
    }
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines['teacher'].get_ydata()[0] == pytest.approx(90.5)
    assert lines['student alone'].get_ydata()[0] == pytest.approx(80.5)
    for method in ('KD', 'MGD-AMP'):
        values = TOP1[method]
        seeds = artists[f'seeds {method}'].get_offsets()
        np.testing.assert_allclose(seeds[:, 1], values)
        mean, std = np.mean(values), np.std(values, ddof=1)
        assert artists[f'mean {method}'].get_ydata()[0] == pytest.approx(mean)
        # The error bar: mean ± the standard deviation (n - 1).
        (segment, ) = artists[f'std {method}'].get_segments()
        np.testing.assert_allclose(segment[:, 1], [mean - std, mean + std])


def test_loss_curves_are_the_logged_losses(benchmark):
    root, results, _ = benchmark
    dirs = figures.work_dirs(figures.load_results(results), 1, root)
    runs = {
        method: figures.plot_logs.read_run(dirs[method], name=method)
        for method in figures.CURVE_METHODS
    }
    task_ax, distill_ax = figures.loss_figure(runs).axes
    iters = np.arange(5, 21, 5)
    task = line_data(task_ax)
    assert sorted(task) == ['KD', 'MGD-AMP', 'student alone']
    np.testing.assert_allclose(task['student alone'][0], iters / ITERS)
    # The student alone logs `loss`, the distillation runs `student.loss`.
    np.testing.assert_allclose(task['student alone'][1], 3.0 + iters / 100)
    np.testing.assert_allclose(task['MGD-AMP'][1], 2.0 + iters / 100)
    distill = line_data(distill_ax)
    assert sorted(distill) == ['KD', 'MGD-AMP']
    np.testing.assert_allclose(distill['KD'][1], 0.5 + iters / 100)
    # The sum of the positions' losses.
    np.testing.assert_allclose(distill['MGD-AMP'][1], 0.75 + 2 * iters / 100)


def test_matching_updates_are_the_hooks_scalars(benchmark):
    root, results, _ = benchmark
    dirs = figures.work_dirs(figures.load_results(results), 1, root)
    run = figures.plot_logs.read_run(dirs['MGD-AMP'])
    changed_ax, cost_ax = figures.matching_updates_figure(run).axes
    changed = line_data(changed_ax)
    assert sorted(changed) == ['mgd0_reducer', 'mgd1_reducer']
    x, y = changed['mgd1_reducer']
    np.testing.assert_array_equal(x, [2])
    np.testing.assert_allclose(y, [1.5])
    x, y = line_data(cost_ax)['mgd1_reducer']
    np.testing.assert_array_equal(x, [1, 2])
    np.testing.assert_allclose(y, [3, 4])


def test_matching_image_is_the_final_checkpoints_groups(benchmark):
    root, results, final = benchmark
    work_dir = figures.work_dirs(figures.load_results(results), 1,
                                 root)['MGD-AMP']
    path = figures.final_checkpoint(work_dir)
    assert osp.basename(path) == 'epoch_2.pth'
    state_dict = torch.load(path, weights_only=True)['state_dict']
    first = torch.load(
        osp.join(work_dir, 'epoch_1.pth'), weights_only=True)['state_dict']
    key = 'distiller.connectors.mgd3_reducer.assignment'
    assert not torch.equal(first[key], state_dict[key])
    for position in final.distiller.positions:
        reducer = final.distiller.reducer(position)
        assignment = reducer.assignment.numpy()
        name, matrix, order = figures.matching_matrix(state_dict,
                                                      position.name)
        assert name == position.name
        num_s, num_t = reducer.student_channels, reducer.teacher_channels
        assert matrix.shape == (num_s, num_t)
        # Every row holds its student channel's group: T / S teacher
        # channels, the ones the matching assigned to it.
        np.testing.assert_array_equal(matrix.sum(1), num_t // num_s)
        np.testing.assert_array_equal(matrix.argmax(0), assignment)
        assert sorted(order) == list(range(num_t))
        np.testing.assert_array_equal(assignment[order],
                                      np.sort(assignment, kind='stable'))
    # The deepest position by default, drawn as is and grouped.
    name, matrix, order = figures.matching_matrix(state_dict)
    assert name == 'mgd3_reducer'
    own, grouped = (
        ax.images[0].get_array()
        for ax in figures.matching_figure(name, matrix, order).axes)
    np.testing.assert_array_equal(own, matrix)
    np.testing.assert_array_equal(grouped, matrix[:, order])
    np.testing.assert_array_equal(grouped.sum(1), 4)
    # Grouped, every row's ones are one block.
    for row in np.asarray(grouped):
        ones = np.flatnonzero(row)
        assert ones[-1] - ones[0] + 1 == len(ones)


def test_bad_inputs_are_named(benchmark, tmp_path):
    root, results, _ = benchmark
    state_dict = torch.load(
        figures.final_checkpoint(
            figures.work_dirs(figures.load_results(results), 1,
                              root)['MGD-AMP']),
        weights_only=True)['state_dict']
    with pytest.raises(
            ValueError,
            match="No MGD position 'mgd9_reducer'.*"
            'mgd0_reducer, mgd1_reducer, mgd2_reducer, '
            'mgd3_reducer'):
        figures.matching_matrix(state_dict, 'mgd9_reducer')
    with pytest.raises(FileNotFoundError, match='no epoch_<N>.pth'):
        figures.final_checkpoint(str(tmp_path))
    out_dir = str(tmp_path / 'figures')
    # Seed 0's MGD-AMP work dir has logs but no checkpoint.
    with pytest.raises(FileNotFoundError, match='seed0/mgd-amp'):
        figures.make_figures(results, out_dir, seed=0, root=root)
    with pytest.raises(
            ValueError, match=r'no MGD-AMP run of seed 5 '
            r'\(seeds: \[0, 1\]\)'):
        figures.make_figures(results, out_dir, seed=5, root=root)


@pytest.mark.parametrize(
    'reducer_type, num_s, assignment',
    [
        # Groups of floor/ceil(10 / 3) teacher channels.
        ('AbsMaxPoolReducer', 3, [2, 0, 1, 1, 0, 2, 2, 1, 0, 2]),
        # One teacher channel per student channel; 7 of 10 unused.
        ('SparseMatchReducer', 3, [8, 1, 4]),
    ])
def test_matching_matrix_of_uneven_and_sparse_groups(reducer_type, num_s,
                                                     assignment):
    with DefaultScope.overwrite_default_scope('mmrazor'):
        reducer = MODELS.build(
            dict(
                type=reducer_type, student_channels=num_s,
                teacher_channels=10))
    reducer.update_matching(assignment)
    state_dict = {
        f'architecture.distiller.connectors.mgd0_reducer.{key}': value
        for key, value in reducer.state_dict().items()
    }
    name, matrix, order = figures.matching_matrix(state_dict)
    assert name == 'mgd0_reducer'
    np.testing.assert_array_equal(matrix.sum(1), reducer.group_size.numpy())
    for student, members in enumerate(reducer.group_index.numpy()):
        size = int(reducer.group_size[student])
        assert set(np.flatnonzero(matrix[student])) == set(members[:size])
    assert sorted(order) == list(range(10))
    if reducer_type == 'SparseMatchReducer':
        assert order[:3].tolist() == assignment
        assert matrix[:, order[3:]].sum() == 0


def test_one_seed_has_no_error_bars(benchmark):
    _, results, _ = benchmark
    one = figures.load_results(results)
    for name, row in one['summary'].items():
        if not name.startswith('_'):
            row.update(seeds=[0], top1=row['top1'][:1], std=None)
            row['mean'] = row['top1'][0]
    (ax, ) = figures.accuracy_figure(one).axes
    gids = {artist.get_gid() for artist in ax.get_children()}
    assert {'mean KD', 'seeds KD', 'mean MGD-AMP'} <= gids
    assert not any(gid and gid.startswith('std') for gid in gids)
    assert ax.get_title() == 'Fashion-MNIST, test images, 1 seed'


MOCO_TOP1 = {
    'linear': {
        'teacher': [80.0, 81.0],
        'student alone': [70.0, 71.0],
        'MGD-AMP': [74.0, 76.0]
    },
    'knn_k20': {
        'teacher': [78.0, 79.0],
        'student alone': [60.0, 62.0],
        'MGD-AMP': [65.0, 66.0]
    },
    'knn_k200': {
        'teacher': [77.0, 78.0],
        'student alone': [59.0, 61.0],
        'MGD-AMP': [64.0, 63.0]
    },
}


@pytest.fixture(scope='module')
def moco_benchmark(tmp_path_factory):
    """A MoCo-v2 results file of two seeds and its pretraining logs."""
    root = str(tmp_path_factory.mktemp('moco'))
    runs = []
    for seed in (0, 1):
        for method in MOCO_TOP1['linear']:
            work_dir = osp.join('work_dirs', 'main_job', 'moco', f'seed{seed}',
                                method.replace(' ', '-'))
            runs.append(dict(method=method, seed=seed, work_dir=work_dir))
            keys = {'loss': 9.0, 'loss_contrastive': 7.0 + seed}
            if method == 'MGD-AMP':
                keys.update({
                    'distill.loss_mgd0': 1.0,
                    'distill.loss_mgd1': 1.0
                })
            write_scalars_log(
                osp.join(root, work_dir), '20260101_100000',
                training_lines(keys))
    summary = {}
    for metric, top1 in MOCO_TOP1.items():
        summary[metric] = {
            method:
            dict(
                seeds=[0, 1],
                top1=values,
                mean=float(np.mean(values)),
                std=float(np.std(values, ddof=1)))
            for method, values in top1.items()
        }
    path = osp.join(root, 'moco.json')
    with open(path, 'w') as file:
        json.dump(
            dict(
                benchmark='fashion_mnist_moco',
                eval_split='test',
                figures=dict(runs=runs, summary=summary)), file)
    return root, path


def test_moco_figures(moco_benchmark, tmp_path):
    root, results = moco_benchmark
    out_dir = str(tmp_path / 'figures')
    assert figures.main([results, '--out-dir', out_dir, '--root', root]) == 0
    assert sorted(os.listdir(out_dir)) == sorted(figures.MOCO_FIGURES.values())

    made = figures.moco_figures(
        figures.load_results(results),
        figures.work_dirs(figures.load_results(results), 1, root), 1)
    panels = made['accuracy'].axes
    assert [ax.get_ylabel()
            for ax in panels] == [label for _, label in figures.MOCO_METRICS]
    for ax, (metric, _) in zip(panels, figures.MOCO_METRICS):
        lines = {line.get_label(): line for line in ax.get_lines()}
        top1 = MOCO_TOP1[metric]
        assert lines['teacher'].get_ydata()[0] == pytest.approx(
            np.mean(top1['teacher']))
        mean = next(a for a in ax.get_children()
                    if a.get_gid() == 'mean MGD-AMP')
        assert mean.get_ydata()[0] == pytest.approx(np.mean(top1['MGD-AMP']))
    task_ax, distill_ax = made['loss_curves'].axes
    assert task_ax.get_ylabel() == 'contrastive loss'
    iters = np.arange(5, 21, 5)
    task = line_data(task_ax)
    # The contrastive loss, not MoCoMGD's total `loss`.
    np.testing.assert_allclose(task['MGD-AMP'][1], 8.0 + iters / 100)
    np.testing.assert_allclose(
        line_data(distill_ax)['MGD-AMP'][1], 2.0 + 2 * iters / 100)
    assert sorted(line_data(distill_ax)) == ['MGD-AMP']
