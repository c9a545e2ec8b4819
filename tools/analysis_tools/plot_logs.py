"""Plot scalars of MMEngine JSON logs, several runs on one figure.

    python tools/analysis_tools/plot_logs.py RUN [RUN ...] --out FIG.png
        [--keys loss 'distill.loss_mgd*'] [--legend NAME ...]
        [--x epoch|iter] [--smooth N] [--title TEXT]

A RUN is a work dir, one of its timestamp dirs, or a JSON-lines log file
(``<work_dir>/<timestamp>/vis_data/scalars.json``, which MMEngine's
``LocalVisBackend`` writes with every scalar of the run). A work dir joins
all its timestamp dirs in time order, so that a resumed run is one curve:
a later piece replaces what an earlier one logged from the step it starts
at on (a repeated step takes the later value).

Each ``--keys`` entry is a scalar name or a glob pattern and gets its own
panel; every run draws the keys it matches there. Lines with ``iter`` are
training lines (x: their iteration); the other lines are logged once per
epoch with ``step`` = the epoch (validation metrics, and MGD's matching
statistics ``mgd/<position>/changed|mean_cost|solve_time``, logged for the
epoch the matching is made before). A per-epoch key with the name of a
training key (``time``, ``data_time`` of validation) is called
``val/<key>``. With ``--x epoch`` an iteration ``i`` is drawn at
``i / iterations per epoch``, so that epoch ``e`` spans ``(e - 1, e]``;
with ``--x iter`` epoch ``e`` is drawn at its last iteration. The
iterations per epoch are read from the log (MMEngine logs every epoch at
the same inner iterations).
"""
import argparse
import fnmatch
import json
import os
import os.path as osp
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# MMEngine names a run's directory time.strftime('%Y%m%d_%H%M%S'), so the
# names sort in time order.
TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
SCALAR_FILE = osp.join('vis_data', 'scalars.json')
AXIS_FIELDS = ('step', 'iter', 'epoch')


@dataclass
class Series:
    """One scalar of one run: ``steps`` (iterations for a training key,
    epochs for a per-epoch key) and ``values``, both of shape (K,), in
    step order."""
    steps: np.ndarray
    values: np.ndarray
    per_epoch: bool


@dataclass
class RunLog:
    """The scalars of one run, read from ``files`` in that order.

    ``iters_per_epoch`` is None for an iteration-based run (no ``epoch`` in
    its training lines).
    """
    name: str
    files: List[str]
    series: Dict[str, Series] = field(default_factory=dict)
    iters_per_epoch: Optional[float] = None

    def x(self, key: str, axis: str) -> np.ndarray:
        """Where the points of ``key`` go on an ``axis`` ('epoch' or
        'iter') axis, shape (K,)."""
        series = self.series[key]
        steps = series.steps.astype(float)
        if self.iters_per_epoch is None:
            if axis == 'epoch':
                raise ValueError(
                    f'{self.name}: the training lines of '
                    f'{self.files[0]} have no "epoch" (an iteration-based '
                    'run); plot it with --x iter.')
            return steps
        if axis == 'epoch':
            return steps if series.per_epoch else steps / self.iters_per_epoch
        return steps * self.iters_per_epoch if series.per_epoch else steps


def find_scalar_files(path: str) -> List[str]:
    """The JSON-lines logs of ``path`` (a work dir, a timestamp dir or a
    log file), in time order."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} does not exist.')
    own = osp.join(path, SCALAR_FILE)
    if osp.isfile(own):
        return [own]
    pieces = [
        osp.join(path, name, SCALAR_FILE) for name in sorted(os.listdir(path))
        if TIMESTAMP.match(name)
        and osp.isfile(osp.join(path, name, SCALAR_FILE))
    ]
    if not pieces:
        raise FileNotFoundError(
            f'{path} has no MMEngine log: neither {own} nor '
            f'<timestamp>/{SCALAR_FILE} in it (a work dir, one of its '
            'timestamp dirs or a scalars.json file is expected).')
    return pieces


def read_lines(path: str) -> List[dict]:
    """The JSON objects of a JSON-lines log, one per non-empty line."""
    records = []
    with open(path, encoding='utf-8') as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path}, line {number}: not JSON '
                                 f'({error.msg}).') from None
            if not isinstance(record, dict) or 'step' not in record:
                raise ValueError(
                    f'{path}, line {number}: not an MMEngine scalar line '
                    '(a JSON object with "step").')
            records.append(record)
    return records


def estimate_iters_per_epoch(
        pieces: Sequence[Sequence[Tuple[int, int]]]) -> Optional[float]:
    """Iterations per epoch from the ``(iter, epoch)`` of the training lines
    of each log file.

    MMEngine logs an epoch at the inner iterations that are multiples of
    the log interval, so within one file the first logged iterations of two
    epochs differ by a whole number of epochs (a resumed piece may log at
    another interval, hence per file). With one epoch logged, the best
    estimate is the lower bound ``max(iter / epoch)``.
    """
    gaps, bound = [], 0.0
    for lines in pieces:
        firsts = {}
        for it, epoch in lines:
            firsts[epoch] = min(firsts.get(epoch, it), it)
            bound = max(bound, it / epoch)
        ordered = sorted(firsts)
        gaps += [(firsts[b] - firsts[a]) / (b - a)
                 for a, b in zip(ordered, ordered[1:])]
    if gaps:
        return float(np.median(gaps))
    return bound or None


def _drop(table: Dict[str, Dict[int, float]], stale) -> None:
    for points in table.values():
        for step in [step for step in points if stale(step)]:
            del points[step]


def read_run(path: str, name: Optional[str] = None) -> RunLog:
    """Read one run (see :func:`find_scalar_files`).

    A later file is a resumed piece: it replaces what the earlier ones
    logged from the epoch it starts at on (training and per-epoch lines),
    or for an iteration-based run from its first iteration on; within a
    file, a repeated step takes the later line.
    """
    files = find_scalar_files(path)
    if name is None:
        name = run_name(path)
    train: Dict[str, Dict[int, float]] = {}
    per_epoch: Dict[str, Dict[int, float]] = {}
    epoch_of_iter: Dict[int, int] = {}
    pieces = []
    for file in files:
        records = read_lines(file)
        train_lines = [r for r in records if 'iter' in r]
        epochs = [r['epoch'] for r in train_lines if 'epoch' in r]
        if epochs:
            first = min(epochs)
            _drop(train, lambda it: epoch_of_iter[it] >= first)
            _drop(per_epoch, lambda epoch: epoch >= first)
        elif train_lines:
            start = min(r['iter'] for r in train_lines)
            _drop(train, lambda it: it >= start)
        pieces.append([(r['iter'], r['epoch']) for r in train_lines
                       if 'epoch' in r])
        for record in records:
            is_train = 'iter' in record
            step = record['iter'] if is_train else record['step']
            if is_train:
                epoch_of_iter[step] = record.get('epoch', 0)
            target = train if is_train else per_epoch
            for key, value in record.items():
                if key in AXIS_FIELDS or not isinstance(value, (int, float)):
                    continue
                target.setdefault(key, {})[step] = float(value)
    run = RunLog(name, files)
    run.iters_per_epoch = estimate_iters_per_epoch(pieces)
    for is_epoch, table in ((False, train), (True, per_epoch)):
        for key, points in table.items():
            if not points:
                continue
            # Validation logs its own time and data_time.
            key_name = f'val/{key}' if is_epoch and key in train else key
            steps = np.array(sorted(points))
            run.series[key_name] = Series(steps,
                                          np.array([points[s] for s in steps]),
                                          is_epoch)
    return run


def run_name(path: str) -> str:
    """The work dir's name: ``work_dirs/foo/<ts>/vis_data/scalars.json``
    and ``work_dirs/foo`` are both ``foo``."""
    path = osp.normpath(osp.abspath(path))
    if osp.isfile(path):
        path = osp.dirname(path)
        if osp.basename(path) == 'vis_data':
            path = osp.dirname(path)
    if TIMESTAMP.match(osp.basename(path)):
        path = osp.dirname(path)
    return osp.basename(path)


def match_keys(runs: Sequence[RunLog], pattern: str) -> List[str]:
    """The keys of any run that ``pattern`` (a name or glob) matches, in
    the order of the runs, then of the keys' natural sort.

    Raises:
        ValueError: if no run has a matching key; the message lists each
            run's files and keys.
    """
    found = []
    for run in runs:
        for key in sorted(run.series, key=natural_key):
            if fnmatch.fnmatchcase(key, pattern) and key not in found:
                found.append(key)
    if not found:
        present = '\n'.join(f'  {run.name} ({", ".join(run.files)}): ' +
                            ', '.join(sorted(run.series, key=natural_key))
                            for run in runs)
        raise ValueError(f'--keys {pattern!r} matches no scalar of any run. '
                         f'The keys present:\n{present}')
    return found


def natural_key(key: str):
    return [
        int(part) if part.isdigit() else part
        for part in re.split(r'(\d+)', key)
    ]


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points; the first points
    average what there is so far. Shape kept."""
    if window <= 1 or len(values) == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return (sums[index] - sums[start]) / (index - start)


def plot_key(ax,
             run: RunLog,
             key: str,
             axis: str,
             label: str,
             window: int = 1,
             **style):
    """Draw ``run``'s ``key`` on ``ax``, a training key averaged over
    ``window`` points; returns the Line2D."""
    series = run.series[key]
    marker = 'o' if series.per_epoch else None
    values = series.values if series.per_epoch else smooth(
        series.values, window)
    (line, ) = ax.plot(
        run.x(key, axis),
        values,
        label=label,
        marker=style.pop('marker', marker),
        **style)
    return line


def default_axis(runs: Sequence[RunLog]) -> str:
    return 'epoch' if all(run.iters_per_epoch for run in runs) else 'iter'


def plot_runs(runs: Sequence[RunLog],
              keys: Sequence[str],
              axis: Optional[str] = None,
              legend: Optional[Sequence[str]] = None,
              title: Optional[str] = None,
              window: int = 1):
    """One panel per entry of ``keys``, each run's matching keys in it.

    Returns:
        matplotlib.figure.Figure: its axes in the order of ``keys``.
    """
    # A bare Figure draws with Agg and touches no pyplot state or display.
    from matplotlib.figure import Figure

    if legend is not None and len(legend) != len(runs):
        raise ValueError(f'--legend has {len(legend)} names for '
                         f'{len(runs)} runs; give one per run.')
    names = list(legend) if legend is not None else [r.name for r in runs]
    axis = axis or default_axis(runs)
    panels = [(pattern, match_keys(runs, pattern)) for pattern in keys]
    figure = Figure(figsize=(8, 3.2 * len(panels)))
    axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)
    for ax, (pattern, matched) in zip(axes[:, 0], panels):
        for run, name in zip(runs, names):
            if not any(key in run.series for key in matched):
                warnings.warn(f'{name} ({", ".join(run.files)}) has no key '
                              f'matching {pattern!r}; its panel shows the '
                              'other runs.')
            for key in matched:
                if key not in run.series:
                    continue
                parts = [name] if len(runs) > 1 else []
                if len(matched) > 1 or not parts:
                    parts.append(key)
                plot_key(ax, run, key, axis, ': '.join(parts), window)
        ax.set_ylabel(pattern)
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    axes[-1, 0].set_xlabel(axis)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument(
        'runs',
        nargs='+',
        metavar='RUN',
        help='work dir, timestamp dir or scalars.json')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=['loss'],
        help='scalar names or glob patterns, one panel each '
        '(default: loss)')
    parser.add_argument(
        '--legend', nargs='+', help='one name per run (default: work dir)')
    parser.add_argument(
        '--x',
        choices=['epoch', 'iter'],
        default=None,
        help='x axis (default: epoch, or iter for iteration-based runs)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument(
        '--smooth',
        type=int,
        default=1,
        metavar='N',
        help='trailing moving average of training keys over N logged '
        'points (default 1: none)')
    parser.add_argument('--out', required=True, help='image file to write')
    args = parser.parse_args(argv)
    if args.smooth < 1:
        parser.error('--smooth takes a positive number of points')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        runs = [read_run(path) for path in args.runs]
        figure = plot_runs(runs, args.keys, args.x, args.legend, args.title,
                           args.smooth)
    except (OSError, ValueError) as error:
        print(f'plot_logs: {error}', file=sys.stderr)
        return 1
    for run in runs:
        print(f'{run.name}: ' + ', '.join(run.files))
    figure.savefig(args.out, dpi=120)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
