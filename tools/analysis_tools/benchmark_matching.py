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

All three use the same integer costs as ours for the OR-Tools solvers; the
totals reported are float sums of the original costs.  Targets (divisible
case): ours <= 0.5 s and >= 8x faster than the reference loop.

Usage::

    python tools/analysis_tools/benchmark_matching.py \
        [--student 512] [--teacher 2048] [--repeats 7] [--seed 0] \
        [--reference-repeats 1] [--scipy-repeats 3] \
        [--non-divisible-student 500]
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np
from ortools.graph.python import linear_sum_assignment as ort_lsa
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from mgd_plugin import matching  # noqa: E402

TARGET_SECONDS = 0.5
TARGET_SPEEDUP = 8.0
RTOL = 1e-9


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
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
    parser.add_argument('--scipy-repeats', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--non-divisible-student',
        type=int,
        default=500,
        help='student channels of a second, non-divisible '
        'case with the same teacher count (0: skip)')
    return parser.parse_args()


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


def run_case(s, t, args):
    cost = np.random.default_rng(args.seed).random((s, t))
    divisible = t % s == 0
    matching.match_channels(cost)  # warm-up (first-call overheads)
    rows = []
    ours_t, ours_n, ours_pi = timed(lambda: matching.match_channels(cost),
                                    args.repeats)
    rows.append(('ours (min-cost flow)', ours_t, ours_n, ours_pi))
    full_t, full_n, full_pi = timed(lambda: ours_unpruned(cost),
                                    args.scipy_repeats)
    rows.append(('ours, pruning off (all S*T arcs)', full_t, full_n, full_pi))
    ref_t, ref_n, ref_pi = timed(lambda: reference(cost),
                                 args.reference_repeats)
    rows.append(('reference (tile + per-arc loop)', ref_t, ref_n, ref_pi))
    sp_t, sp_n, sp_pi = timed(lambda: scipy_tiled(cost), args.scipy_repeats)
    rows.append(('scipy linear_sum_assignment', sp_t, sp_n, sp_pi))

    g = t // s
    print(f'\n== {s} x {t} (student x teacher), seed {args.seed}, ' +
          (f'divisible, g = {g}' if divisible else
           f'NOT divisible: groups {g}/{g + 1}; reference shaves '
           f'{t - g * s} teacher channels'))
    print(f'{"method":34s} {"median s":>9s} {"runs":>5s} '
          f'{"matched":>8s} {"total cost":>20s}')
    for name, sec, n, pi in rows:
        print(f'{name:34s} {sec:9.4f} {n:5d} {int((pi >= 0).sum()):8d} '
              f'{total(cost, pi):20.12f}')

    ours_total = total(cost, ours_pi)
    comparable = [('ours unpruned', full_pi), ('scipy', sp_pi)
                  ] + ([('reference', ref_pi)] if divisible else [])
    agree = balanced(ours_pi, s, t) and balanced(sp_pi, s, t)
    for name, pi in comparable:
        diff = abs(total(cost, pi) - ours_total)
        agree &= diff <= RTOL * max(1.0, abs(ours_total))
        print(f'|total(ours) - total({name})| = {diff:.3e}')
    speedup = ref_t / ours_t
    print(f'speed-up ours vs reference loop: {speedup:.1f}x; '
          f'ours vs scipy: {sp_t / ours_t:.1f}x')
    return ours_t, speedup, agree, divisible


def main():
    args = parse_args()
    ok = True
    results = [run_case(args.student, args.teacher, args)]
    if args.non_divisible_student > 0:
        results.append(
            run_case(args.non_divisible_student, args.teacher, args))
    print()
    for (ours_t, speedup, agree,
         divisible), s in zip(results,
                              [args.student, args.non_divisible_student]):
        label = f'{s}x{args.teacher}'
        checks = [(f'ours <= {TARGET_SECONDS} s ({ours_t:.3f} s)', ours_t
                   <= TARGET_SECONDS), ('optimal totals agree', agree)]
        if divisible:
            checks.append((f'>= {TARGET_SPEEDUP:.0f}x faster than reference '
                           f'({speedup:.1f}x)', speedup >= TARGET_SPEEDUP))
        for text, passed in checks:
            ok &= passed
            print(f'{"PASS" if passed else "FAIL"}  {label}: {text}')
    print('OVERALL:', 'PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
