"""Benchmark the MGD channel matching solver against the reference approach.

Times, on the same seeded random cost matrix (student x teacher):

* ours: ``mgd_plugin.matching.match_channels`` (min-cost flow, exact, all
  teacher channels matched);
* reference: the original MGD approach, re-implemented from its
  description: tile the cost matrix g = T // S times (each student row
  copied g times), add every arc to OR-Tools ``SimpleLinearSumAssignment``
  from a Python double loop (``add_arc_with_cost`` per arc, integer costs),
  solve.  When T is not a multiple of S it drops teacher channels
  >= g * S, so its total is then for a different (smaller) problem;
* ours with pruning switched off (one flow over all S * T arcs), to show
  what the pruning + pricing buys;
* SciPy ``linear_sum_assignment`` on the tiled matrix (for non-divisible
  sizes: q copies of each row + one optional copy, with dummy columns, which
  forces group sizes floor/ceil(T/S) exactly like ours).

All use the same integer costs as ours for the OR-Tools solvers; the
totals reported are float sums of the original costs, and "agree" means
equal totals (relative 1e-9): the same optimum, whatever the ties.

Shapes (``--shapes``, both by default):

* ``real``: every position of the shipped ImageNet configs (ResNet-50 to
  ResNet-18, MobileNet-V1, MobileNet-V2 and ShuffleNet-V2), student and
  teacher channels read from each config's ``model.distiller``; the costs
  are uniform random numbers in [0, 1) (seeded per position), not
  features. Per pair, the times are also summed over its positions (one
  matching update). Target: every optimum agrees and ours takes at most
  0.5 s per pair.
* ``random``: 512 x 2048 and 500 x 2048 (``--student``, ``--teacher``,
  ``--non-divisible-student``), uniform random costs. Targets (divisible
  case): ours <= 0.5 s and >= 8x faster than the reference loop.

Prints the tables and a PASS/FAIL verdict and writes every figure to
``benchmarks/results/matching.json`` (``--out``).

Usage::

    python tools/analysis_tools/benchmark_matching.py \
        [--shapes real random] [--student 512] [--teacher 2048] \
        [--repeats 7] [--seed 0] [--reference-repeats 1] \
        [--scipy-repeats 3] [--non-divisible-student 500] [--out JSON]
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np
from ortools.graph.python import linear_sum_assignment as ort_lsa
from scipy.optimize import linear_sum_assignment

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.abspath(osp.join(HERE, '..', '..'))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, HERE)
import benchmark_record  # noqa: E402

from mgd_plugin import matching  # noqa: E402

TARGET_SECONDS = 0.5
TARGET_SPEEDUP = 8.0
RTOL = 1e-9
# The shipped ImageNet configs whose positions ``--shapes real`` times.
REAL_CONFIGS = {
    'ResNet-50 -> ResNet-18':
    'configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py',
    'ResNet-50 -> MobileNet-V1':
    'configs/mgd/mgd-amp_resnet50-mobilenet-v1_8xb32_in1k.py',
    'ResNet-50 -> MobileNet-V2':
    'configs/mgd/mgd-amp_resnet50-mobilenet-v2_8xb32_in1k.py',
    'ResNet-50 -> ShuffleNet-V2':
    'configs/mgd/mgd-amp_resnet50-shufflenet-v2_8xb32_in1k.py',
}
SHAPES = ('real', 'random')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--shapes',
        nargs='+',
        choices=SHAPES,
        default=list(SHAPES),
        help='real: the positions of the shipped ImageNet configs; '
        'random: --student x --teacher (and the non-divisible case)')
    parser.add_argument('--student', type=int, default=512)
    parser.add_argument('--teacher', type=int, default=2048)
    parser.add_argument(
        '--repeats',
        type=int,
        default=7,
        help='runs of ours (median reported)')
    parser.add_argument(
        '--reference-repeats',
        type=int,
        default=1,
        help='runs of the slow per-arc reference loop')
    parser.add_argument(
        '--scipy-repeats',
        type=int,
        default=3,
        help='runs of SciPy and of ours with pruning off')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--non-divisible-student',
        type=int,
        default=500,
        help='student channels of a second, non-divisible '
        'case with the same teacher count (0: skip)')
    parser.add_argument(
        '--configs',
        nargs='+',
        default=list(REAL_CONFIGS.values()),
        help='MGD configs whose positions --shapes real times (default: '
        'the four shipped ImageNet configs)')
    benchmark_record.add_out_argument(parser, 'matching')
    return parser.parse_args(argv)


def position_shapes(config: str):
    """``[(name, student channels, teacher channels), ...]`` of the MGD
    positions of a config: its ``model.distiller`` positions (either
    compact form) and explicit reducer connectors, in order."""
    from mmengine.config import Config

    import mgd_plugin  # noqa: F401  (mmpretrain:: bases, registries)
    from mgd_plugin.models.distillers.matching_guided_distiller import \
        expand_positions
    if not osp.isabs(config) and not osp.exists(config):
        config = osp.join(REPO_ROOT, config)
    distiller = Config.fromfile(config).model.distiller
    connectors = dict(distiller.get('connectors') or {})
    positions = distiller.get('positions')
    if positions:
        connectors.update(
            expand_positions(positions, dict(type='AbsMaxPoolReducer'),
                             {})['connectors'])
    shapes = [(name[:-len('_reducer')] if name.endswith('_reducer') else name,
               int(c['student_channels']), int(c['teacher_channels']))
              for name, c in connectors.items()
              if 'student_channels' in c and 'teacher_channels' in c]
    if not shapes:
        raise ValueError(f'{config}: model.distiller has no MGD position '
                         '(no reducer with student_channels and '
                         'teacher_channels).')
    return shapes


def timed(fn, repeats):
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times), result


def int_costs(cost):
    s, t = cost.shape
    return matching._to_int_costs(cost, cost.min(), cost.max(), s + t + 1)


def reference(cost):
    """Original approach: tile, per-arc Python loop, OR-Tools LSA.

    Returns the student of each teacher channel, -1 for shaved ones.
    """
    s, t = cost.shape
    g = t // s
    tiled = np.repeat(int_costs(cost), g, axis=0)[:, :g * s]
    n = tiled.shape[0]
    assignment = ort_lsa.SimpleLinearSumAssignment()
    for i in range(n):
        for j in range(n):
            assignment.add_arc_with_cost(i, j, int(tiled[i, j]))
    status = assignment.solve()
    if status != assignment.OPTIMAL:
        raise RuntimeError(f'reference solver status {status!r}')
    pi = np.full(t, -1, np.int64)
    for i in range(n):
        pi[assignment.right_mate(i)] = i // g
    return pi


def scipy_tiled(cost):
    s, t = cost.shape
    q, r = divmod(t, s)
    if r == 0:
        rows, cols = linear_sum_assignment(np.repeat(cost, q, axis=0))
        student = rows // q
    else:
        forbid = 10 * (np.abs(cost).max() * t + 1)
        big = np.vstack([
            np.hstack(
                [np.repeat(cost, q, axis=0),
                 np.full((s * q, s - r), forbid)]),
            np.hstack([cost, np.zeros((s, s - r))]),
        ])
        rows, cols = linear_sum_assignment(big)
        student = np.where(rows < s * q, rows // q, rows - s * q)
    pi = np.full(t, -1, np.int64)
    real = cols < t
    pi[cols[real]] = student[real]
    return pi


def ours_unpruned(cost):
    """Ours with pruning off: one min-cost flow over all S * T arcs."""
    saved = matching._CANDIDATES
    matching._CANDIDATES = cost.shape[1]
    try:
        return matching.match_channels(cost)
    finally:
        matching._CANDIDATES = saved


def total(cost, pi):
    cols = np.flatnonzero(pi >= 0)
    return float(cost[pi[cols], cols].sum())


def balanced(pi, s, t):
    sizes = np.bincount(pi[pi >= 0], minlength=s)
    return (pi >= 0).all() and sizes.min() >= t // s and \
        sizes.max() <= -(-t // s)


def run_case(s, t, args, seed, title):
    """Time every method on one seeded random (s, t) cost matrix; print
    its table; return its figures."""
    cost = np.random.default_rng(seed).random((s, t))
    divisible = t % s == 0
    matching.match_channels(cost)  # warm-up (first-call overheads)
    methods = (
        ('ours', 'ours (min-cost flow)', lambda: matching.match_channels(cost),
         args.repeats),
        ('ours_unpruned', 'ours, pruning off (all S*T arcs)',
         lambda: ours_unpruned(cost), args.scipy_repeats),
        ('reference', 'reference (tile + per-arc loop)',
         lambda: reference(cost), args.reference_repeats),
        ('scipy', 'scipy linear_sum_assignment', lambda: scipy_tiled(cost),
         args.scipy_repeats),
    )
    g = t // s
    print(f'\n== {title}: {s} x {t} (student x teacher), seed {seed}, ' +
          (f'divisible, g = {g}' if divisible else
           f'NOT divisible: groups {g}/{g + 1}; reference shaves '
           f'{t - g * s} teacher channels'))
    print(f'{"method":34s} {"median s":>9s} {"runs":>5s} '
          f'{"matched":>8s} {"total cost":>20s}')
    figures, assignments = {}, {}
    for key, label, solve, repeats in methods:
        seconds, runs, pi = timed(solve, repeats)
        assignments[key] = pi
        figures[key] = dict(
            median_s=seconds,
            runs=runs,
            matched=int((pi >= 0).sum()),
            total_cost=total(cost, pi))
        print(f'{label:34s} {seconds:9.4f} {runs:5d} '
              f'{figures[key]["matched"]:8d} '
              f'{figures[key]["total_cost"]:20.12f}')

    ours_total = figures['ours']['total_cost']
    # The reference solves another problem when it shaves channels.
    comparable = ['ours_unpruned', 'scipy'
                  ] + (['reference'] if divisible else [])
    agree = balanced(assignments['ours'], s, t) and balanced(
        assignments['scipy'], s, t)
    differences = {}
    for key in comparable:
        diff = abs(figures[key]['total_cost'] - ours_total)
        differences[key] = diff
        agree &= diff <= RTOL * max(1.0, abs(ours_total))
        print(f'|total(ours) - total({key})| = {diff:.3e}')
    ours_s = figures['ours']['median_s']
    ratios = {
        key: figures[key]['median_s'] / ours_s
        for key in ('reference', 'scipy', 'ours_unpruned')
    }
    print(f'speed-up ours vs reference loop: {ratios["reference"]:.1f}x; '
          f'ours vs scipy: {ratios["scipy"]:.1f}x')
    return dict(
        student=s,
        teacher=t,
        seed=seed,
        divisible=divisible,
        reference_shaved=t - g * s,
        methods=figures,
        total_differences=differences,
        times_slower_than_ours=ratios,
        optima_agree=bool(agree))


def run_random(args):
    cases = [run_case(args.student, args.teacher, args, args.seed, 'random')]
    if args.non_divisible_student > 0:
        cases.append(
            run_case(args.non_divisible_student, args.teacher, args, args.seed,
                     'random'))
    checks = []
    for case in cases:
        label = f'{case["student"]}x{case["teacher"]}'
        ours_s = case['methods']['ours']['median_s']
        checks += [(f'{label}: ours <= {TARGET_SECONDS} s ({ours_s:.3f} s)',
                    ours_s <= TARGET_SECONDS),
                   (f'{label}: optimal totals agree', case['optima_agree'])]
        if case['divisible']:
            speedup = case['times_slower_than_ours']['reference']
            checks.append((f'{label}: >= {TARGET_SPEEDUP:.0f}x faster than '
                           f'reference ({speedup:.1f}x)', speedup
                           >= TARGET_SPEEDUP))
    return cases, checks


def run_real(args):
    pairs, checks, index = {}, [], 0
    labels = {config: pair for pair, config in REAL_CONFIGS.items()}
    for config in args.configs:
        pair = labels.get(config, osp.splitext(osp.basename(config))[0])
        positions = []
        for name, s, t in position_shapes(config):
            case = run_case(s, t, args, args.seed + index, f'{pair}, {name}')
            index += 1
            positions.append(dict(position=name, **case))
        sums = {
            key: sum(p['methods'][key]['median_s'] for p in positions)
            for key in positions[0]['methods']
        }
        agree = all(p['optima_agree'] for p in positions)
        pairs[pair] = dict(
            config=config,
            positions=positions,
            summed_median_s=sums,
            times_slower_than_ours={
                key: sums[key] / sums['ours']
                for key in sums if key != 'ours'
            },
            optima_agree=agree)
        checks += [(f'{pair}: optimal totals agree at every position', agree),
                   (f'{pair}: ours <= {TARGET_SECONDS} s for all positions '
                    f'({sums["ours"]:.3f} s)', sums['ours'] <= TARGET_SECONDS)]
    print('\n== real shapes, per pair (seconds summed over its positions; '
          'random costs)')
    print(f'{"pair":28s} {"shapes (S x T)":34s} {"ours":>7s} '
          f'{"reference":>15s} {"scipy":>14s} {"agree":>5s}')
    for pair, row in pairs.items():
        shapes = ' '.join(f'{p["student"]}x{p["teacher"]}'
                          for p in row['positions'])
        sums, ratios = row['summed_median_s'], row['times_slower_than_ours']
        print(f'{pair:28s} {shapes:34s} {sums["ours"]:7.3f} '
              f'{sums["reference"]:7.3f} ({ratios["reference"]:4.1f}x) '
              f'{sums["scipy"]:6.3f} ({ratios["scipy"]:4.1f}x) '
              f'{"yes" if row["optima_agree"] else "NO":>5s}')
    print('(reference at non-divisible positions: its own, smaller problem '
          'after shaving teacher channels)')
    return pairs, checks


def main(argv=None):
    args = parse_args(argv)
    figures, checks = {}, []
    if 'real' in args.shapes:
        figures['real'], found = run_real(args)
        checks += found
    if 'random' in args.shapes:
        figures['random'], found = run_random(args)
        checks += found
    verdict = benchmark_record.make_verdict(checks)
    print()
    for check in verdict['checks']:
        print(f'{"PASS" if check["passed"] else "FAIL"}  {check["check"]}')
    print('OVERALL:', 'PASS' if verdict['passed'] else 'FAIL')
    record = benchmark_record.make_record(
        'matching',
        figures,
        verdict,
        command=benchmark_record.command_line(
            [__file__, *(sys.argv[1:] if argv is None else argv)]),
        costs='uniform random in [0, 1), seeded',
        settings=vars(args))
    print('wrote', benchmark_record.write_record(record, args.out))
    return 0 if verdict['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
