"""The README's figures of the Fashion-MNIST results.

    python tools/analysis_tools/plot_fashion_mnist.py RESULTS_JSON
        [--out-dir docs/figures] [--seed S] [--position NAME]
        [--root DIR]

RESULTS_JSON is what ``tools/analysis_tools/benchmark_fashion_mnist.py``
writes (``benchmarks/results/fashion_mnist_<split>.json``); the logs and
checkpoints are read from the work dirs it lists (relative to ``--root``,
default the repository root, where the benchmark runs). Writes, into
``--out-dir``:

- ``fashion_mnist_accuracy.png``: top-1 of every student method, the mean
  with the standard deviation over seeds as error bar and every seed as a
  dot; the teacher and the student alone as reference lines.
- ``fashion_mnist_loss_curves.png``: the task loss and the distillation
  loss (the sum of the run's ``distill.*`` losses) over training of the
  student alone, KD and MGD-AMP of one seed (``--seed``, default the
  first).
- ``fashion_mnist_matching_updates.png``: per matching epoch of that
  MGD-AMP run, the fraction of teacher channels whose student channel
  changed, and the mean matched cost, one line per position (the
  ``mgd/<position>/...`` scalars of ``MatchingUpdateHook``).
- ``fashion_mnist_matching.png``: the matching of one position
  (``--position``, default the deepest) in that run's final checkpoint:
  student x teacher channels, 1 where the teacher channel is in the
  student channel's group; teacher channels in their own order, then
  sorted by their student channel, so that the groups show as blocks.

For the MoCo-v2 record (``fashion_mnist_moco_<split>.json``):

- ``fashion_mnist_moco_accuracy.png``: linear, 20-NN and 200-NN top-1 of
  the frozen backbones, as above (MGD-AMP; the teacher and the student
  alone as lines).
- ``fashion_mnist_moco_loss_curves.png``: the contrastive loss and the
  MGD loss (the sum of the ``distill.*`` losses) over pretraining of the
  student alone and with MGD-AMP of one seed.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import plot_logs  # noqa: E402

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
REFERENCES = ('teacher', 'student alone')
CURVE_METHODS = ('student alone', 'KD', 'MGD-AMP')
MGD = 'MGD-AMP'
FIGURES = dict(
    accuracy='fashion_mnist_accuracy.png',
    loss_curves='fashion_mnist_loss_curves.png',
    matching_updates='fashion_mnist_matching_updates.png',
    matching='fashion_mnist_matching.png')
MOCO_BENCHMARK = 'fashion_mnist_moco'
MOCO_FIGURES = dict(
    accuracy='fashion_mnist_moco_accuracy.png',
    loss_curves='fashion_mnist_moco_loss_curves.png')
# The summaries of a MoCo record and their axis labels.
MOCO_METRICS = (('linear', 'linear top-1 (%)'), ('knn_k20', '20-NN top-1 (%)'),
                ('knn_k200', '200-NN top-1 (%)'))
TASK_LOSSES = ('student.loss', 'loss_contrastive')
# The buffers a channel reducer keeps in a checkpoint (see
# mgd_plugin/models/architectures/connectors/base_reducer.py).
GROUP_INDEX = re.compile(r'^(?P<prefix>(?:.*\.)?connectors\.'
                         r'(?P<name>[^.]+)\.)group_index$')


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    # A bare Figure draws with Agg and touches no pyplot state or display.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(rows, cols, squeeze=False).ravel()


def load_results(path: str) -> dict:
    """The ``runs`` and ``summary`` of a benchmark_fashion_mnist.py record
    (kept under its ``figures``), with its ``eval_split``."""
    with open(path, encoding='utf-8') as file:
        record = json.load(file)
    results = dict(record.get('figures') or {})
    results['eval_split'] = record.get('eval_split')
    results['benchmark'] = record.get('benchmark')
    for key in ('summary', 'runs'):
        if key not in results:
            raise ValueError(f'{path} has no {key!r}: not a results file of '
                             'tools/analysis_tools/benchmark_fashion_mnist.py')
    summaries = ([results['summary'][key]
                  for key, _ in MOCO_METRICS] if results['benchmark']
                 == MOCO_BENCHMARK else [results['summary']])
    for summary in summaries:
        missing = [name for name in REFERENCES if name not in summary]
        if missing:
            raise ValueError(f'{path}: the summary lacks {missing}, the '
                             'reference lines of the accuracy figure.')
    return results


def _student_methods(summary: dict) -> List[str]:
    return [
        name for name in summary
        if not name.startswith('_') and name not in REFERENCES
    ]


def accuracy_figure(results: dict):
    """Top-1 per student method: mean ± std, every seed, references."""
    methods = _student_methods(results['summary'])
    figure, (ax, ) = _figure(max(4.0, 1.1 * len(methods) + 2.0), 4.0)
    seeds = results['summary']['teacher']['seeds']
    accuracy_panel(
        ax, results['summary'], 'top-1 (%)',
        f'Fashion-MNIST, {results.get("eval_split", "test")} '
        f'images, {len(seeds)} seed{"s" * (len(seeds) > 1)}')
    figure.tight_layout()
    return figure


def accuracy_panel(ax, summary: dict, ylabel: str, title: str) -> None:
    """One metric of a ``summarise`` result on ``ax``: every student
    method's mean ± std and seeds, the references as lines."""
    methods = _student_methods(summary)
    for name, colour in zip(REFERENCES, ('tab:green', 'tab:red')):
        row = summary[name]
        ax.axhline(row['mean'], color=colour, linestyle='--', label=f'{name}')
        if row.get('std'):
            ax.axhspan(
                row['mean'] - row['std'],
                row['mean'] + row['std'],
                color=colour,
                alpha=0.12)
    for index, name in enumerate(methods):
        row = summary[name]
        seeds = np.asarray(row['top1'], dtype=float)
        # Spread the seeds sideways so that equal values stay visible.
        offsets = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 \
            else np.zeros(1)
        ax.scatter(
            index + offsets,
            seeds,
            s=18,
            color='0.35',
            zorder=3,
            label='one seed' if index == 0 else None,
            gid=f'seeds {name}')
        bar = ax.errorbar(
            index,
            row['mean'],
            yerr=row['std'] or None,
            fmt='o',
            color='tab:blue',
            markersize=7,
            capsize=6,
            zorder=4,
            label='mean ± std' if index == 0 else None)
        bar.lines[0].set_gid(f'mean {name}')
        if bar.lines[2]:
            bar.lines[2][0].set_gid(f'std {name}')
        ax.annotate(
            f'{row["mean"]:.2f}', (index, row['mean']),
            xytext=(10, 0),
            textcoords='offset points',
            va='center',
            fontsize='small')
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods)
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis='y', alpha=0.3)
    ax.legend(fontsize='small', loc='best')


def work_dirs(results: dict, seed: int, root: str) -> Dict[str, str]:
    """{method: work dir} of ``seed``."""
    return {
        record['method']: osp.join(root, record['work_dir'])
        for record in results['runs'] if record['seed'] == seed
    }


def task_and_distill_losses(run: plot_logs.RunLog) -> Tuple[str, str]:
    """Add the run's distillation loss (the sum of its ``distill.*``
    losses, which MMRazor logs in the same lines) as ``distill (sum)``.

    Returns:
        tuple: the key of the task loss (``student.loss`` in a distillation
        run, ``loss_contrastive`` in a MoCo run, ``loss`` otherwise) and of
        the distillation loss, None for a run without one.
    """
    parts = sorted(key for key in run.series if key.startswith('distill.'))
    task = next((key for key in TASK_LOSSES if key in run.series), 'loss')
    if task not in run.series:
        raise ValueError(f'{run.name} ({", ".join(run.files)}) logs no '
                         'loss.')
    if not parts:
        return task, None
    steps = run.series[parts[0]].steps
    for key in parts[1:]:
        if not np.array_equal(run.series[key].steps, steps):
            raise ValueError(f'{run.name}: {key} and {parts[0]} were logged '
                             'at different iterations.')
    total = sum(run.series[key].values for key in parts)
    run.series['distill (sum)'] = plot_logs.Series(steps, total, False)
    return task, 'distill (sum)'


def loss_figure(runs: Dict[str, plot_logs.RunLog],
                task_label: str = 'task loss (cross-entropy)',
                title: str = 'Training losses, Fashion-MNIST'):
    """Task loss and distillation loss over epochs, a panel each."""
    figure, (task_ax, distill_ax) = _figure(7.0, 6.0, rows=2)
    for method, run in runs.items():
        task, distill = task_and_distill_losses(run)
        style = dict(color=f'C{CURVE_METHODS.index(method)}' if method in
                     CURVE_METHODS else None)
        plot_logs.plot_key(task_ax, run, task, 'epoch', method, **style)
        if distill is not None:
            plot_logs.plot_key(distill_ax, run, distill, 'epoch', method,
                               **style)
    task_ax.set_ylabel(task_label)
    distill_ax.set_ylabel('distillation loss')
    distill_ax.set_xlabel('epoch')
    for ax in (task_ax, distill_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    task_ax.set_title(title)
    figure.tight_layout()
    return figure


def positions_of(run: plot_logs.RunLog) -> List[str]:
    names = {key.split('/')[1] for key in run.series if key.startswith('mgd/')}
    if not names:
        raise ValueError(f'{run.name} ({", ".join(run.files)}) has no MGD '
                         'matching scalars (mgd/<position>/...).')
    return sorted(names, key=plot_logs.natural_key)


def matching_updates_figure(run: plot_logs.RunLog):
    """Per matching epoch and position: the fraction of channels moved and
    the mean matched cost."""
    figure, (changed_ax, cost_ax) = _figure(7.0, 6.0, rows=2)
    for position in positions_of(run):
        for ax, stat in ((changed_ax, 'changed'), (cost_ax, 'mean_cost')):
            key = f'mgd/{position}/{stat}'
            if key in run.series:
                plot_logs.plot_key(ax, run, key, 'epoch', position)
    changed_ax.set_ylabel('fraction of teacher\nchannels reassigned')
    cost_ax.set_ylabel('mean matched cost')
    cost_ax.set_xlabel('matching before epoch')
    changed_ax.set_title('MGD-AMP matching updates, Fashion-MNIST')
    for ax in (changed_ax, cost_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return figure


def final_checkpoint(work_dir: str) -> str:
    """The ``epoch_<N>.pth`` with the largest N in ``work_dir``."""
    found = []
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            match = re.fullmatch(r'epoch_(\d+)\.pth', name)
            if match:
                found.append((int(match.group(1)), name))
    if not found:
        raise FileNotFoundError(f'{work_dir} has no epoch_<N>.pth checkpoint.')
    return osp.join(work_dir, max(found)[1])


def matching_matrix(
        state_dict: dict,
        position: Optional[str] = None) -> Tuple[str, np.ndarray, np.ndarray]:
    """The matching of one reducer in a checkpoint's ``state_dict``.

    Args:
        state_dict: of an MGD algorithm (``distiller.connectors.<name>.*``).
        position: the reducer's name (``mgd2_reducer``); default: the last.

    Returns:
        tuple: the name, the (S, T) 0/1 matrix (``[i, j] = 1`` when teacher
        channel ``j`` is in student channel ``i``'s group) and the teacher
        channels in group order, shape (T,): every group's members in turn,
        then the channels in no group (those a sparse matching leaves).
    """
    reducers = {}
    for key in state_dict:
        match = GROUP_INDEX.match(key)
        if match:
            reducers[match.group('name')] = match.group('prefix')
    if not reducers:
        raise ValueError('The checkpoint holds no MGD channel reducer '
                         '(no connectors.<name>.group_index).')
    names = sorted(reducers, key=plot_logs.natural_key)
    name = names[-1] if position is None else position
    if name not in reducers:
        raise ValueError(f'No MGD position {name!r} in the checkpoint; it '
                         f'has {", ".join(names)}.')
    prefix = reducers[name]
    if not bool(state_dict[prefix + 'matching_installed']):
        raise ValueError(f'{name} has no matching installed in the '
                         'checkpoint.')
    group_index = state_dict[prefix + 'group_index'].cpu().numpy()
    group_size = state_dict[prefix + 'group_size'].cpu().numpy()
    num_t = state_dict[prefix + 'margin'].numel()
    matrix = np.zeros((len(group_index), num_t), dtype=np.uint8)
    order = []
    for student, (members, size) in enumerate(zip(group_index, group_size)):
        matrix[student, members[:size]] = 1
        order.extend(members[:size].tolist())
    grouped = set(order)
    order += [j for j in range(num_t) if j not in grouped]
    return name, matrix, np.array(order)


def matching_figure(name: str, matrix: np.ndarray, order: np.ndarray):
    """The matrix with teacher channels in their own order, then in group
    order (its tick labels: the teacher channel numbers)."""
    num_s, num_t = matrix.shape
    figure, (own_ax, grouped_ax) = _figure(
        min(14.0, 2.5 + num_t * 0.16), 1.5 + 0.45 * num_s, rows=2)
    cells = dict(
        cmap='Greys', aspect='auto', vmin=0, vmax=1, interpolation='nearest')
    own_ax.imshow(matrix, **cells)
    own_ax.set_xlabel('teacher channel')
    grouped_ax.imshow(matrix[:, order], **cells)
    grouped_ax.set_xticks(range(num_t))
    grouped_ax.set_xticklabels([str(j) for j in order],
                               fontsize=5,
                               rotation=90)
    grouped_ax.set_xlabel('teacher channel, grouped by student channel')
    for ax in (own_ax, grouped_ax):
        ax.set_ylabel('student channel')
        if num_s <= 32:
            ax.set_yticks(range(num_s))
            ax.tick_params(axis='y', labelsize=6)
    own_ax.set_title(f'MGD-AMP matching at {name}: {num_s} student x '
                     f'{num_t} teacher channels')
    figure.tight_layout()
    return figure


def make_figures(results_path: str,
                 out_dir: str,
                 seed: Optional[int] = None,
                 position: Optional[str] = None,
                 root: str = REPO_ROOT) -> Dict[str, str]:
    """Write the four figures (the two of a MoCo record); returns
    {figure: path}."""
    results = load_results(results_path)
    seeds = sorted({record['seed'] for record in results['runs']})
    if seed is None:
        seed = seeds[0]
    dirs = work_dirs(results, seed, root)
    if results['benchmark'] == MOCO_BENCHMARK:
        return _save(moco_figures(results, dirs, seed), MOCO_FIGURES, out_dir)
    if MGD not in dirs:
        raise ValueError(f'{results_path} has no {MGD} run of seed {seed} '
                         f'(seeds: {seeds}).')
    curves = {
        method: plot_logs.read_run(dirs[method], name=method)
        for method in CURVE_METHODS if method in dirs
    }

    # Importing the plugin first makes safe (weights_only) loading read
    # MMEngine's checkpoints.
    from mgd_plugin.utils import read_state_dict
    _, state_dict = read_state_dict(final_checkpoint(dirs[MGD]))

    figures = dict(
        accuracy=accuracy_figure(results),
        loss_curves=loss_figure(curves),
        matching_updates=matching_updates_figure(curves[MGD]),
        matching=matching_figure(*matching_matrix(state_dict, position)))
    return _save(figures, FIGURES, out_dir)


def moco_figures(results: dict, dirs: Dict[str, str], seed: int) -> dict:
    """The MoCo-v2 figures: linear and k-NN top-1 per method over seeds,
    and the contrastive and MGD losses of one seed's students."""
    summary = results['summary']
    seeds = summary['linear']['teacher']['seeds']
    figure, axes = _figure(12.0, 4.0, cols=len(MOCO_METRICS))
    for ax, (key, label) in zip(axes, MOCO_METRICS):
        accuracy_panel(ax, summary[key], label, label.split(' (')[0])
    figure.suptitle(
        f'MoCo-v2 on Fashion-MNIST, frozen backbones, '
        f'{results.get("eval_split", "test")} images, {len(seeds)} '
        f'seed{"s" * (len(seeds) > 1)}')
    figure.tight_layout()
    curves = {
        method: plot_logs.read_run(dirs[method], name=method)
        for method in ('student alone', MGD) if method in dirs
    }
    return dict(
        accuracy=figure,
        loss_curves=loss_figure(
            curves, 'contrastive loss',
            f'MoCo-v2 pretraining losses, Fashion-MNIST, seed {seed}'))


def _save(figures: dict, names: Dict[str, str], out_dir: str):
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for key, figure in figures.items():
        written[key] = osp.join(out_dir, names[key])
        figure.savefig(written[key], dpi=120)
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument(
        'results',
        help='JSON of tools/analysis_tools/'
        'benchmark_fashion_mnist.py')
    parser.add_argument(
        '--out-dir',
        default=osp.join('docs', 'figures'),
        help='where the PNG files go (default: docs/figures)')
    parser.add_argument(
        '--seed',
        type=int,
        default=None,
        help='the seed of the loss curves and the matching (default: the '
        'first)')
    parser.add_argument(
        '--position',
        default=None,
        help='the MGD position of the matching figure, e.g. mgd0_reducer '
        '(default: the deepest)')
    parser.add_argument(
        '--root',
        default=REPO_ROOT,
        help='what the work dirs in RESULTS are relative to (default: the '
        'repository root)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        written = make_figures(args.results, args.out_dir, args.seed,
                               args.position, args.root)
    except (OSError, ValueError) as error:
        print(f'plot_fashion_mnist: {error}', file=sys.stderr)
        return 1
    for path in written.values():
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
