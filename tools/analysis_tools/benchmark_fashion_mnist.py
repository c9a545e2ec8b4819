"""Fashion-MNIST results: every method of the recipes, several seeds, one
budget, written to ``benchmarks/results/``.

    python3 tools/analysis_tools/benchmark_fashion_mnist.py
        [--quick] [--parts classification moco] [--seeds 0 1 2]
        [--methods NAME ...] [--moco-seeds 0 1] [--jobs 2]
        [--eval-split test|heldout] [--work-root work_dirs/main_job]
        [--out-dir benchmarks/results]

Classification: for every seed, trains the teacher, then every student
(alone, KD, OFD, MGD with each reducer, MGD-AMP + KD) from that seed's
teacher with the recipe's schedule (the configs of README "Fashion-MNIST
recipe"), through ``tools/train.py`` and ``tools/test.py`` exactly as
``tools/run_main_job.py`` does, in the same cached work dirs: the main
job's runs are reused, an interrupted run resumes, and a rerun only
prints. Writes ``fashion_mnist_<split>.json``.

MoCo-v2: for every MoCo seed, pretrains the MoCo-v2 teacher (the
classification teacher's network), then the student's MoCo-v2 alone and
with MGD-AMP from that teacher, on the same 10k training images without
labels; then evaluates each frozen backbone by a linear classifier trained
on those images' labels (MoCo's linear protocol, ``tools/train.py`` and
``tools/test.py``) and by k-NN (``knn_eval.py``, k = 20 and 200). Writes
``fashion_mnist_moco_<split>.json``.

Each prints per method the result of every seed, mean, standard
deviation, the share of the teacher-student gap closed and a paired t-test
against the student alone (SciPy; seeds pair up because they share the
teacher), and writes all of it, with every run's numbers, the machine,
versions, command and date, as JSON.

Runs that do not depend on each other run side by side, ``--jobs`` at a
time, each with ``cores / jobs`` threads and its output in ``train.log``
(and ``eval_<split>.log``) of its work dir: on two cores two one-thread
trainings of these small networks finish in about 1.25x the time of one
two-thread training. The seconds in the JSON are wall seconds under that
sharing.

``--quick``: seed 0; teacher, student alone, KD and MGD-AMP; MoCo-v2
with 3 pretraining epochs instead of 10 (its own work dirs). From empty
work dirs it took 12 min 42 s on two cores (2026-12-02); the full run (3
classification seeds x 9 methods, 2 MoCo seeds) about 105 minutes, in
pieces, while other jobs shared the cores. Choose settings with
``--eval-split heldout`` (training images no run trains on), never on
the test split.
"""
import argparse
import concurrent.futures
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

MOCO_PAIR = 'resnet18-w16-w4_10e_fashion-mnist-10k'
# name -> (pretraining config, linear evaluation config).
MOCO_METHODS = {
    'teacher':
    ('configs/mgd_moco/mocov2_resnet18-w16_10e_fashion-mnist-10k.py',
     'configs/mgd_moco/benchmarks/'
     'resnet18-w16_linear-10e_fashion-mnist-10k.py'),
    'student alone':
    ('configs/mgd_moco/mocov2_resnet18-w4_10e_fashion-mnist-10k.py',
     'configs/mgd_moco/benchmarks/resnet18-w4_linear-10e_fashion-mnist-10k.py'
     ),
    'MGD-AMP': (f'configs/mgd_moco/mocov2-mgd_{MOCO_PAIR}.py',
                'configs/mgd_moco/benchmarks/'
                'resnet18-w4_linear-10e_fashion-mnist-10k.py'),
}
# --quick: shorter pretraining (the cosine schedule shortened with it); the
# linear evaluation keeps its protocol.
QUICK_MOCO_EPOCHS = 3
KNN_K = (20, 200)
PARTS = ('classification', 'moco')


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


def moco_runs_for_seed(work_root: str, seed: int, quick: bool = False):
    """{method: (pretraining Run, linear evaluation Run)} of one MoCo seed;
    the MGD student learns from its teacher, every linear evaluation reads
    its pretraining's last checkpoint."""
    folder = 'moco_quick' if quick else 'moco'
    seed_dir = osp.join(work_root, folder, f'seed{seed}')
    common = [f'randomness.seed={seed}']
    if quick:
        common += [
            f'train_cfg.max_epochs={QUICK_MOCO_EPOCHS}',
            f'param_scheduler.0.T_max={QUICK_MOCO_EPOCHS}'
        ]
    runs = {}
    teacher_ckpt = None
    for name, (config, linear_config) in MOCO_METHODS.items():
        stem = osp.splitext(osp.basename(config))[0]
        options, depends_on = list(common), []
        if name == 'MGD-AMP':
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
            depends_on.append(teacher_ckpt)
        pretraining = main_job.Run(f'MoCo {name}', config,
                                   osp.join(seed_dir, stem), options,
                                   depends_on)
        if name == 'teacher':
            teacher_ckpt = pretraining.final_checkpoint
        linear = main_job.Run(
            f'MoCo {name}, linear',
            linear_config,
            osp.join(seed_dir, f'linear_{stem}'), [
                f'randomness.seed={seed}', *main_job.NO_VAL,
                'model.backbone.init_cfg.checkpoint='
                f'{pretraining.final_checkpoint}'
            ],
            depends_on=[pretraining.final_checkpoint])
        runs[name] = (pretraining, linear)
    return runs


def knn_evaluate(pretraining, linear, split: str, logs=False, threads=None):
    """{k: top-1 (%)} of k-NN on ``split`` with ``pretraining``'s final
    backbone, the labelled bank being ``linear``'s training images; cached
    per checkpoint in ``pretraining``'s work dir (``logs``, ``threads``: as
    ``run_main_job.train``)."""
    metrics, _ = main_job.cached_metrics(
        osp.join(pretraining.work_dir, f'knn_{split}.json'),
        pretraining.final_checkpoint,
        lambda out: [
            sys.executable, 'tools/analysis_tools/knn_eval.py', linear.config
            if split == 'test' else main_job.heldout_config(linear),
            '--checkpoint', pretraining.final_checkpoint, '--k', *map(
                str, KNN_K), '--out', out
        ],
        f'{pretraining.name}: k-NN on the {split} images',
        log_path=osp.join(pretraining.work_dir, f'knn_{split}.log')
        if logs else None,
        threads=threads)
    return {k: metrics[f'knn/top1@k{k}'] for k in KNN_K}


class SideBySide:
    """Runs tasks ``jobs`` at a time, each after the tasks it needs.

    Tasks start in the order they are submitted and may only need tasks
    submitted before them, so a task that waits for another waits for one
    that has already started: no worker waits for a task still queued.
    """

    def __init__(self, jobs: int) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(jobs)
        self.futures = []

    def submit(self, fn, after=()):

        def task():
            for future in after:
                future.result()
            return fn()

        future = self.pool.submit(task)
        self.futures.append(future)
        return future

    def wait(self) -> None:
        """Until every task is done; the first failure stops the tasks not
        yet started and is raised."""
        for future in concurrent.futures.as_completed(self.futures):
            if future.exception() is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
                raise future.exception()
        self.pool.shutdown()


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


def format_table(summary, methods, split: str, what: str = 'top-1') -> str:
    seeds = summary['teacher']['seeds']
    many = len(seeds) > 1
    lines = [
        f'Fashion-MNIST, {what} (%) on the {split} images; gap closed = '
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
        help='seed 0 and ' + ', '.join(QUICK_METHODS) +
        f'; MoCo-v2 pretraining of {QUICK_MOCO_EPOCHS} epochs')
    parser.add_argument(
        '--parts',
        nargs='+',
        choices=PARTS,
        default=list(PARTS),
        help='default: both')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=None,
        help='classification seeds; default: 0 1 2 (0 with --quick)')
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=list(METHODS),
        default=None,
        metavar='NAME',
        help='classification methods; default: all (with --quick: '
        f'{", ".join(QUICK_METHODS)}); choices: '
        f'{", ".join(METHODS)}')
    parser.add_argument(
        '--moco-seeds',
        type=int,
        nargs='+',
        default=None,
        help='MoCo-v2 seeds; default: 0 1 (0 with --quick)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=min(2,
                    os.cpu_count() or 1),
        help='runs side by side (default: 2, or 1 on one core)')
    parser.add_argument(
        '--eval-split', choices=['test', 'heldout'], default='test')
    parser.add_argument(
        '--work-root', default=osp.join('work_dirs', 'main_job'))
    parser.add_argument(
        '--out-dir',
        default=osp.join('benchmarks', 'results'),
        help='where fashion_mnist[_moco][_quick]_<split>.json go')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error('--jobs must be at least 1')
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.moco_seeds is None:
        args.moco_seeds = [0] if args.quick else [0, 1]
    if args.methods is None:
        args.methods = list(QUICK_METHODS if args.quick else METHODS)
    missing = {'teacher', 'student alone'} - set(args.methods)
    if missing:
        parser.error(f'--methods needs {" and ".join(sorted(missing))}: '
                     'the gap closed is measured between them')
    args.methods = [name for name in METHODS if name in args.methods]
    quick = '_quick' if args.quick else ''
    args.out = osp.join(args.out_dir,
                        f'fashion_mnist{quick}_{args.eval_split}.json')
    args.moco_out = osp.join(
        args.out_dir, f'fashion_mnist_moco{quick}_{args.eval_split}.json')
    return args


def run_record(name, seed, run, **figures):
    """One run's entry of the JSON record."""
    state = main_job._load_json(osp.join(run.work_dir,
                                         main_job.STATE_FILE)) or {}
    return dict(
        method=name,
        seed=seed,
        config=run.config,
        work_dir=osp.relpath(run.work_dir, REPO_ROOT),
        train_seconds=state.get('seconds'),
        **figures)


def submit_classification(side, args, work_root, tools):
    """Every classification run as tasks, in phases: a generator that
    submits the teachers, yields None, submits the students and yields a
    function that collects the results once the tasks are done."""
    runs = {
        seed: runs_for_seed(work_root, seed, args.methods)
        for seed in args.seeds
    }

    def train_and_evaluate(seed, name, run):
        main_job.say(f'seed {seed}: {name}')
        main_job.train(run, **tools)
        return main_job.evaluate(run, args.eval_split, **tools)

    futures = {}
    for seed in args.seeds:
        futures[seed,
                'teacher'] = side.submit(lambda s=seed: train_and_evaluate(
                    s, 'teacher', runs[s]['teacher']))
    yield None
    for seed in args.seeds:
        for name, run in runs[seed].items():
            if name != 'teacher':
                futures[seed, name] = side.submit(
                    lambda s=seed, n=name, r=run: train_and_evaluate(s, n, r),
                    after=[futures[seed, 'teacher']])

    def collect():
        top1 = {name: {} for name in args.methods}
        records = []
        for seed in args.seeds:
            for name, run in runs[seed].items():
                top1[name][seed] = futures[seed, name].result()
                records.append(
                    run_record(name, seed, run, top1=top1[name][seed]))
        summary = summarise(top1, args.methods)
        table = format_table(summary, args.methods, args.eval_split)
        return dict(
            runs=records, summary=summary), table, dict(
                methods={name: METHODS[name]
                         for name in args.methods},
                seeds=args.seeds)

    yield collect


def submit_moco(side, args, work_root, tools):
    """Every MoCo-v2 pretraining, linear evaluation and k-NN as tasks, in
    phases (see :func:`submit_classification`): the teachers, the
    students, the evaluations, then the collecting function."""
    runs = {
        seed: moco_runs_for_seed(work_root, seed, args.quick)
        for seed in args.moco_seeds
    }
    pretrained = {}
    for stage in (('teacher', ), ('student alone', 'MGD-AMP')):
        for seed in args.moco_seeds:
            for name in stage:
                run = runs[seed][name][0]
                after = ([pretrained[seed,
                                     'teacher']] if name == 'MGD-AMP' else [])
                pretrained[seed, name] = side.submit(
                    lambda s=seed, r=run:
                    (main_job.say(f'MoCo seed {s}: {r.name}'),
                     main_job.train(r, **tools)),
                    after=after)
        yield None

    def evaluate(pretraining, linear):
        main_job.train(linear, **tools)
        return dict(
            linear=main_job.evaluate(linear, args.eval_split, **tools),
            knn=knn_evaluate(pretraining, linear, args.eval_split, **tools))

    evaluated = {}
    for seed in args.moco_seeds:
        for name, (pretraining, linear) in runs[seed].items():
            evaluated[seed, name] = side.submit(
                lambda p=pretraining, r=linear: evaluate(p, r),
                after=[pretrained[seed, name]])

    def collect():
        metrics = {'linear': {}, **{f'knn_k{k}': {} for k in KNN_K}}
        for values in metrics.values():
            values.update({name: {} for name in MOCO_METHODS})
        records = []
        for seed in args.moco_seeds:
            for name, (pretraining, linear) in runs[seed].items():
                result = evaluated[seed, name].result()
                metrics['linear'][name][seed] = result['linear']
                for k in KNN_K:
                    metrics[f'knn_k{k}'][name][seed] = result['knn'][k]
                records.append(
                    run_record(
                        name,
                        seed,
                        pretraining,
                        linear_config=linear.config,
                        linear_top1=result['linear'],
                        linear_train_seconds=run_record(
                            name, seed, linear)['train_seconds'],
                        **{f'knn_top1_k{k}': result['knn'][k]
                           for k in KNN_K}))
        methods = list(MOCO_METHODS)
        summary = {
            key: summarise(values, methods)
            for key, values in metrics.items()
        }
        table = '\n\n'.join(
            format_table(summary[key], methods, args.eval_split, what)
            for key, what in [('linear', 'MoCo-v2, linear top-1')] +
            [(f'knn_k{k}', f'MoCo-v2, {k}-NN top-1') for k in KNN_K])
        return dict(
            runs=records, summary=summary), table, dict(
                methods={
                    name: dict(pretraining=c, linear=lc)
                    for name, (c, lc) in MOCO_METHODS.items()
                },
                seeds=args.moco_seeds,
                pretraining_epochs=QUICK_MOCO_EPOCHS if args.quick else None)

    yield collect


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
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # Side by side, the tools' logs would interleave on the terminal.
    tools = dict(logs=args.jobs > 1, threads=threads)
    main_job.say(f'{args.jobs} run(s) at a time, {threads} thread(s) each' +
                 (', logs in each work dir' if tools['logs'] else ''))
    side = SideBySide(args.jobs)
    phases = {}
    if 'moco' in args.parts:
        phases['fashion_mnist_moco',
               args.moco_out] = submit_moco(side, args, work_root, tools)
    if 'classification' in args.parts:
        phases['fashion_mnist',
               args.out] = submit_classification(side, args, work_root, tools)
    # Phase by phase across the parts: the teachers of both first, then
    # the students, then the evaluations. Tasks start in the order they
    # are submitted; submitted part after part, the classification teacher
    # of --quick waited for the whole MoCo part (16.5 min in all, measured).
    parts = {}
    while len(parts) < len(phases):
        for key, part in phases.items():
            if key not in parts:
                collect = next(part)
                if collect is not None:
                    parts[key] = collect
    side.wait()

    command = ('python3 tools/analysis_tools/benchmark_fashion_mnist.py ' +
               shlex.join(argv)).strip()
    for (name, out), collect in parts.items():
        figures, table, described = collect()
        record = benchmark_record.make_record(
            name,
            figures=figures,
            command=command,
            eval_split=args.eval_split,
            jobs=args.jobs,
            threads_per_run=threads,
            wall_seconds=round(time.monotonic() - start, 1),
            **described)
        benchmark_record.write_record(record, out)
        print('\n' + table, flush=True)
        main_job.say(f'wrote {out}')


if __name__ == '__main__':
    main(sys.argv[1:])
