"""Fashion-MNIST results: every method of the recipe, several seeds, one
budget, written to ``benchmarks/results/``.

    python3 tools/analysis_tools/benchmark_fashion_mnist.py
        [--quick] [--seeds 0 1 2] [--methods NAME ...]
        [--eval-split test|heldout] [--work-root work_dirs/main_job]
        [--out benchmarks/results/fashion_mnist_<split>.json]

For every seed: trains the teacher, then every student (alone, KD, OFD,
MGD with each reducer, MGD-AMP + KD) from that seed's teacher with the
recipe's schedule (the configs of README "Fashion-MNIST recipe"), through
``tools/train.py`` and ``tools/test.py`` exactly as ``tools/run_main_job.py``
does, in the same cached work dirs: the main job's runs are reused, an
interrupted run resumes, and a rerun only prints. Then it prints per method
the top-1 of every seed, mean, standard deviation, the share of the
teacher-student gap closed and a paired t-test against the student alone
(SciPy; seeds pair up because they share the teacher), and writes all of
it, with the machine, versions, command and date, as JSON.

``--quick`` (about 15 minutes on two cores): seed 0; teacher, student alone,
KD and MGD-AMP. The full run (3 seeds, 9 methods) takes about two hours.
Choose settings with ``--eval-split heldout`` (training images no run
trains on), never on the test split.
"""
import argparse
import os
import os.path as osp
import shlex
import sys
import time

TOOLS = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, TOOLS)
sys.path.insert(0, osp.join(TOOLS, 'analysis_tools'))
import benchmark_record  # noqa: E402
import bootstrap  # noqa: E402
import run_main_job as main_job  # noqa: E402

REPO_ROOT = bootstrap.REPO_ROOT
PAIR = 'resnet18-w16-w4_10e_fashion-mnist-10k'
# name -> config; the order of the table.
METHODS = {
    'teacher': main_job.TEACHER,
    'student alone': main_job.STUDENT,
    'KD': f'configs/kd/kd_{PAIR}.py',
    'OFD': f'configs/ofd/ofd_{PAIR}.py',
    'MGD-AMP': main_job.MGD,
    'MGD-RD': f'configs/mgd/mgd-rd_{PAIR}.py',
    'MGD-SP': f'configs/mgd/mgd-sp_{PAIR}.py',
    'MGD-SM': f'configs/mgd/mgd-sm_{PAIR}.py',
    'MGD-AMP + KD': f'configs/mgd/mgd-amp-kd_{PAIR}.py',
}
QUICK_METHODS = ('teacher', 'student alone', 'KD', 'MGD-AMP')


def runs_for_seed(work_root: str, seed: int, methods):
    """{method: Run} of one seed; the students learn from its teacher.

    The work dirs and options are the main job's, so its runs are shared.
    """
    teacher, _, _ = main_job.runs_for_seed(work_root, seed)
    common = teacher.cfg_options
    runs = {}
    for name in methods:
        config = METHODS[name]
        work_dir = osp.join(work_root, f'seed{seed}',
                            osp.splitext(osp.basename(config))[0])
        if name == 'teacher':
            runs[name] = teacher
        elif name == 'student alone':
            runs[name] = main_job.Run(name, config, work_dir, common)
        else:
            runs[name] = main_job.Run(
                name,
                config,
                work_dir,
                common + [f'model.teacher_ckpt={teacher.final_checkpoint}'],
                depends_on=[teacher.final_checkpoint])
    return runs


def summarise(top1, methods):
    """top1: {method: {seed: top-1}} -> {method: statistics}."""
    import numpy as np
    from scipy import stats

    seeds = sorted(top1['teacher'])
    teacher = np.array([top1['teacher'][s] for s in seeds])
    alone = np.array([top1['student alone'][s] for s in seeds])
    summary = {}
    for name in methods:
        values = np.array([top1[name][s] for s in seeds])
        row = dict(
            seeds=seeds,
            top1=values.tolist(),
            mean=float(values.mean()),
            std=float(values.std(ddof=1)) if len(seeds) > 1 else None)
        if name not in ('teacher', 'student alone'):
            closed = (values - alone) / (teacher - alone) * 100
            row['gap_closed_percent'] = closed.tolist()
            row['gap_closed_mean'] = float(closed.mean())
            if len(seeds) > 1:
                row['gap_closed_std'] = float(closed.std(ddof=1))
                test = stats.ttest_rel(values, alone)
                row['paired_t_vs_alone'] = dict(
                    t=float(test.statistic), p=float(test.pvalue))
        summary[name] = row
    gap = teacher - alone
    summary['_gap'] = dict(
        per_seed=gap.tolist(),
        mean=float(gap.mean()),
        std=float(gap.std(ddof=1)) if len(seeds) > 1 else None)
    return summary


def format_table(summary, methods, split: str) -> str:
    seeds = summary['teacher']['seeds']
    many = len(seeds) > 1
    lines = [
        f'Fashion-MNIST, top-1 (%) on the {split} images; gap closed = '
        '(method - alone) / (teacher - alone)', '', '| method | ' +
        ' | '.join(f'seed {s}'
                   for s in seeds) + (' | mean ± std' if many else '') +
        ' | gap closed' + (' | p (paired t vs alone)' if many else '') + ' |',
        '|---' * (len(seeds) + 2 + 2 * many) + '|'
    ]
    for name in methods:
        row = summary[name]
        cells = [f'{v:.2f}' for v in row['top1']]
        if many:
            cells.append(f'{row["mean"]:.2f} ± {row["std"]:.2f}')
        if 'gap_closed_mean' in row:
            closed = f'{row["gap_closed_mean"]:.0f}%'
            if many:
                closed += f' ± {row["gap_closed_std"]:.0f}%'
            cells.append(closed)
            if many:
                cells.append(f'{row["paired_t_vs_alone"]["p"]:.3f}')
        else:
            cells += [''] * (1 + many)
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    gap = summary['_gap']
    lines.append('')
    lines.append(f'teacher - alone: {gap["mean"]:.2f} points' +
                 (f' (std over seeds {gap["std"]:.2f})' if many else ''))
    return '\n'.join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='seed 0 and ' + ', '.join(QUICK_METHODS))
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=None,
        help='default: 0 1 2 (0 with --quick)')
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=list(METHODS),
        default=None,
        metavar='NAME',
        help='default: all (with --quick: '
        f'{", ".join(QUICK_METHODS)}); choices: '
        f'{", ".join(METHODS)}')
    parser.add_argument(
        '--eval-split', choices=['test', 'heldout'], default='test')
    parser.add_argument(
        '--work-root', default=osp.join('work_dirs', 'main_job'))
    parser.add_argument(
        '--out',
        default=None,
        help='default: benchmarks/results/'
        'fashion_mnist[_quick]_<split>.json')
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.methods is None:
        args.methods = list(QUICK_METHODS if args.quick else METHODS)
    missing = {'teacher', 'student alone'} - set(args.methods)
    if missing:
        parser.error(f'--methods needs {" and ".join(sorted(missing))}: '
                     'the gap closed is measured between them')
    args.methods = [name for name in METHODS if name in args.methods]
    if args.out is None:
        args.out = osp.join(
            'benchmarks', 'results',
            f'fashion_mnist{"_quick" if args.quick else ""}_'
            f'{args.eval_split}.json')
    return args


def main(argv) -> None:
    args = parse_args(argv)  # --help and bad options before any set-up
    bootstrap.enter_environment(__file__, argv)
    os.chdir(REPO_ROOT)
    start = time.monotonic()
    sys.path.insert(0, osp.join(TOOLS, 'misc'))
    import prepare_fashion_mnist
    try:
        prepare_fashion_mnist.prepare(log=main_job.say)
    except (prepare_fashion_mnist.DataNotFoundError, ValueError) as error:
        raise SystemExit(f'[benchmark] {error}')

    work_root = osp.abspath(args.work_root)
    top1 = {name: {} for name in args.methods}
    records = []
    for seed in args.seeds:
        runs = runs_for_seed(work_root, seed, args.methods)
        for name, run in runs.items():
            main_job.say(f'seed {seed}: {name}')
            main_job.train(run)
            top1[name][seed] = main_job.evaluate(run, args.eval_split)
            state = main_job._load_json(
                osp.join(run.work_dir, main_job.STATE_FILE)) or {}
            records.append(
                dict(
                    method=name,
                    seed=seed,
                    config=run.config,
                    work_dir=osp.relpath(run.work_dir, REPO_ROOT),
                    top1=top1[name][seed],
                    train_seconds=state.get('seconds')))
    summary = summarise(top1, args.methods)
    table = format_table(summary, args.methods, args.eval_split)
    record = benchmark_record.make_record(
        'fashion_mnist',
        figures=dict(runs=records, summary=summary),
        command='python3 tools/analysis_tools/benchmark_fashion_mnist.py ' +
        shlex.join(argv),
        eval_split=args.eval_split,
        methods={name: METHODS[name]
                 for name in args.methods},
        wall_seconds=round(time.monotonic() - start, 1))
    benchmark_record.write_record(record, args.out)
    print('\n' + table, flush=True)
    main_job.say(f'wrote {args.out}')


if __name__ == '__main__':
    main(sys.argv[1:])
