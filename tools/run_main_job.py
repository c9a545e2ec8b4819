"""The main job in one command: MGD-AMP on Fashion-MNIST, on a CPU.

    python3 tools/run_main_job.py [--seeds 0 [1 2 ...]]
        [--eval-split test|heldout] [--work-root work_dirs/main_job]

From a bare ``python3`` it sets itself up (tools/bootstrap.py: ``.venv``,
pip install), gets Fashion-MNIST (tools/misc/prepare_fashion_mnist.py),
then, for every seed, through ``tools/train.py`` and ``tools/test.py``:

1. trains the teacher, 2. trains the student with MGD-AMP from that
teacher, 3. trains the student alone with the same schedule, 4. evaluates
the three with MMPretrain's ``Accuracy`` on the 10k test images (or, with
``--eval-split heldout``, on the held-out part of the training images that
hyper-parameters are chosen on), and prints their top-1 and the share of
the teacher-student gap that MGD closed.

Every step is cached in its own work dir under ``--work-root``
(``seed{S}/<config name>``): a finished training or evaluation is reused,
an interrupted training resumes from its last checkpoint (``--resume``). A
work dir made with a different config, seed or teacher is refused.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bootstrap  # noqa: E402

REPO_ROOT = bootstrap.REPO_ROOT
TEACHER = 'configs/fashion_mnist/resnet18-w16_10e_fashion-mnist-10k.py'
STUDENT = 'configs/fashion_mnist/resnet18-w4_10e_fashion-mnist-10k.py'
MGD = 'configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py'
# The main job evaluates with tools/test.py; validating during training
# would only repeat that.
NO_VAL = ('val_dataloader=None', 'val_cfg=None', 'val_evaluator=None')
STATE_FILE = 'main_job_run.json'


def say(message: str) -> None:
    print(f'[main job] {message}', flush=True)


class Run:
    """One training of the main job and the files it leaves.

    Args:
        name: what the table calls it.
        config: the config file, relative to the repository root.
        work_dir: its own work dir.
        cfg_options: ``--cfg-options`` for tools/train.py and test.py.
        depends_on: files whose identity (size, mtime) is part of this
            run's identity (the teacher checkpoint of a student).
    """

    def __init__(self, name, config, work_dir, cfg_options=(), depends_on=()):
        self.name = name
        self.config = config
        self.work_dir = work_dir
        self.cfg_options = list(cfg_options)
        self.depends_on = list(depends_on)
        self._cfg = None

    @property
    def cfg(self):
        if self._cfg is None:
            # mgd_plugin first: its compat layer lets MMEngine find the
            # `mmpretrain::` base configs on setuptools >= 81.
            from mmengine.config import Config, DictAction

            import mgd_plugin  # noqa: F401

            cfg = Config.fromfile(osp.join(REPO_ROOT, self.config))
            options = {}
            for option in self.cfg_options:
                key, value = option.split('=', 1)
                options[key] = DictAction._parse_iterable(value)
            cfg.merge_from_dict(options)
            self._cfg = cfg
        return self._cfg

    @property
    def max_epochs(self) -> int:
        return int(self.cfg.train_cfg.max_epochs)

    @property
    def final_checkpoint(self) -> str:
        return osp.join(self.work_dir, f'epoch_{self.max_epochs}.pth')

    def fingerprint(self) -> str:
        """The config as the runner sees it, and what it depends on."""
        digest = hashlib.sha256()
        digest.update(
            json.dumps(self.cfg.to_dict(), sort_keys=True,
                       default=repr).encode())
        for path in self.depends_on:
            digest.update(json.dumps(file_identity(path)).encode())
        return digest.hexdigest()


def file_identity(path: str):
    stat = os.stat(path)
    return [osp.abspath(path), stat.st_size, stat.st_mtime_ns]


def _load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path, data) -> None:
    tmp = path + '.part'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _call(command, log_path=None, threads=None) -> float:
    """Run a tool in the repository root; its seconds.

    Args:
        command: the tool's command line.
        log_path: where its output goes (for runs side by side, whose
            logs would interleave); by default the terminal.
        threads: torch's intra-op threads (``OMP_NUM_THREADS``) unless the
            environment sets them; by default torch's own choice.
    """
    start = time.monotonic()
    # OpenMP threads that spin while they wait made a training step of these
    # small networks 10-20x slower once another process used a core of the
    # two (measured); passive threads sleep instead. A user's setting wins.
    env = dict(os.environ)
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    if threads is not None:
        env.setdefault('OMP_NUM_THREADS', str(threads))
    shown = ' '.join(command)
    if log_path is None:
        print('$ ' + shown, flush=True)
        result = subprocess.run(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, env=env)
    else:
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        with open(log_path, 'w') as log:
            log.write('$ ' + shown + '\n')
            log.flush()
            result = subprocess.run(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env)
    if result.returncode != 0:
        output = '' if log_path is None else (
            f'\nIts output is in {log_path}; it ended:\n' +
            _tail(log_path, 15))
        raise SystemExit(
            f'[main job] failed (exit {result.returncode}): {shown}{output}'
            '\nRerun the same command to continue: finished steps are '
            'reused and the training resumes from its last checkpoint.')
    return time.monotonic() - start


def _tail(path: str, lines: int) -> str:
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def train(run: Run, logs: bool = False, threads=None) -> str:
    """Train ``run`` unless done; resume it when it was interrupted.
    Returns what happened: 'cached', 'resumed' or 'trained'. With ``logs``
    the tool's output goes to ``train.log`` in the work dir; ``threads``:
    see :func:`_call`."""
    state_path = osp.join(run.work_dir, STATE_FILE)
    fingerprint = run.fingerprint()
    state = _load_json(state_path)
    if state is not None and state.get('fingerprint') != fingerprint:
        raise SystemExit(
            f'[main job] {run.work_dir} holds a run of a different config, '
            'seed or teacher than this one needs. Delete that folder to '
            'train it again.')
    if state is not None and state.get('finished') and osp.isfile(
            run.final_checkpoint):
        say(f'{run.name}: cached ({run.final_checkpoint})')
        return 'cached'
    resume = osp.isfile(osp.join(run.work_dir, 'last_checkpoint'))
    os.makedirs(run.work_dir, exist_ok=True)
    _write_json(state_path, dict(fingerprint=fingerprint, finished=False))
    say(f'{run.name}: {"resuming" if resume else "training"} {run.config} '
        f'({run.max_epochs} epochs) in {run.work_dir}')
    command = [
        sys.executable, 'tools/train.py', run.config, '--work-dir',
        run.work_dir, '--cfg-options', *run.cfg_options
    ] + (['--resume'] if resume else [])
    seconds = _call(
        command,
        log_path=osp.join(run.work_dir, 'train.log') if logs else None,
        threads=threads)
    if not osp.isfile(run.final_checkpoint):
        raise SystemExit(f'[main job] {run.name}: training ended without '
                         f'{run.final_checkpoint}')
    _write_json(state_path,
                dict(fingerprint=fingerprint, finished=True, seconds=seconds))
    return 'resumed' if resume else 'trained'


def heldout_config(run: Run) -> str:
    """A config that evaluates ``run`` on the held-out training images
    (``heldout_dataset`` of the Fashion-MNIST base config)."""
    path = osp.join(run.work_dir, 'heldout_config.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = [{osp.join(REPO_ROOT, run.config)!r}]\n"
                'test_dataloader = dict(\n'
                '    dataset=dict(_delete_=True, **_base_.heldout_dataset))\n')
    return path


def cached_metrics(result_path: str,
                   checkpoint: str,
                   command,
                   message: str,
                   log_path=None,
                   threads=None):
    """The metrics a tool writes for ``checkpoint``, kept in
    ``result_path`` and reused while the checkpoint is the same file.

    Args:
        command: ``command(out)``, the tool's command line writing its
            metrics JSON to ``out``.
        message: said before the tool runs.
        log_path, threads: see :func:`_call`.

    Returns:
        tuple: the metrics dict and whether they were cached.
    """
    identity = file_identity(checkpoint)
    cached = _load_json(result_path)
    if cached is not None and cached.get('checkpoint') == identity:
        return cached['metrics'], True
    out = result_path + '.metrics.json'
    say(message)
    _call(command(out), log_path=log_path, threads=threads)
    metrics = _load_json(out)
    os.remove(out)
    _write_json(result_path, dict(checkpoint=identity, metrics=metrics))
    return metrics, False


def evaluate(run: Run, split: str, logs: bool = False, threads=None) -> float:
    """Top-1 (%) of ``run``'s final checkpoint on ``split``, cached
    (``logs``, ``threads``: as :func:`train`)."""
    metrics, cached = cached_metrics(
        osp.join(run.work_dir, f'eval_{split}.json'),
        run.final_checkpoint,
        lambda out: [
            sys.executable, 'tools/test.py', run.config if split == 'test' else
            heldout_config(run), run.final_checkpoint, '--work-dir',
            osp.join(run.work_dir, f'eval_{split}'
                     ), '--out', out, '--cfg-options', *run.cfg_options
        ],
        f'{run.name}: evaluating on the {split} images',
        log_path=osp.join(run.work_dir, f'eval_{split}.log') if logs else None,
        threads=threads)
    top1 = metrics['accuracy/top1']
    if cached:
        say(f'{run.name}: {split} top-1 {top1:.2f} (cached)')
    return top1


def runs_for_seed(work_root: str, seed: int):
    """The teacher, the MGD student and the student alone of one seed."""
    seed_dir = osp.join(work_root, f'seed{seed}')

    def work_dir(config):
        return osp.join(seed_dir, osp.splitext(osp.basename(config))[0])

    common = [f'randomness.seed={seed}', *NO_VAL]
    teacher = Run('teacher', TEACHER, work_dir(TEACHER), common)
    teacher_ckpt = teacher.final_checkpoint
    mgd = Run(
        'MGD-AMP student',
        MGD,
        work_dir(MGD),
        common + [f'model.teacher_ckpt={teacher_ckpt}'],
        depends_on=[teacher_ckpt])
    student = Run('student alone', STUDENT, work_dir(STUDENT), common)
    return teacher, mgd, student


def gap_closed(teacher: float, student: float, mgd: float) -> float:
    """The share of the teacher-student gap that MGD closed."""
    if teacher == student:
        return float('nan')
    return (mgd - student) / (teacher - student)


def format_table(results, split: str) -> str:
    """results: {seed: dict(teacher=, student=, mgd=)} (top-1 in %)."""
    seeds = sorted(results)
    rows = [('teacher', TEACHER, 'teacher'),
            ('student alone', STUDENT, 'student'),
            ('student + MGD-AMP', MGD, 'mgd')]
    header = f'{"":<19}' + ''.join(f'{"seed " + str(s):>9}' for s in seeds)
    if len(seeds) > 1:
        header += f'{"mean":>9}{"std":>7}'
    images = ('the 10k test images'
              if split == 'test' else 'the 10k held-out training images')
    lines = [f'Fashion-MNIST, top-1 (%) on {images}', header + '   config']

    def stats(values):
        mean = sum(values) / len(values)
        var = sum((v - mean)**2 for v in values) / max(len(values) - 1, 1)
        return mean, var**0.5

    for label, config, key in rows:
        values = [results[s][key] for s in seeds]
        line = f'{label:<19}' + ''.join(f'{v:9.2f}' for v in values)
        if len(seeds) > 1:
            mean, std = stats(values)
            line += f'{mean:9.2f}{std:7.2f}'
        lines.append(line + '   ' + config)
    closed = [
        gap_closed(results[s]['teacher'], results[s]['student'],
                   results[s]['mgd']) * 100 for s in seeds
    ]
    line = f'{"gap closed by MGD":<19}' + ''.join(f'{c:8.1f}%' for c in closed)
    if len(seeds) > 1:
        mean, std = stats(closed)
        line += f'{mean:8.1f}%{std:6.1f}%'
    lines.append(line)
    lines.append('gap closed = (MGD - alone) / (teacher - alone)')
    return '\n'.join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0],
        help='one full replicate (teacher and both '
        'students) per seed')
    parser.add_argument(
        '--eval-split', choices=['test', 'heldout'], default='test')
    parser.add_argument(
        '--work-root', default=osp.join('work_dirs', 'main_job'))
    return parser.parse_args(argv)


def main(argv) -> None:
    args = parse_args(argv)  # --help works before any set-up
    bootstrap.enter_environment(__file__, argv)
    os.chdir(REPO_ROOT)
    start = time.monotonic()
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'misc'))
    import prepare_fashion_mnist

    say('step 1: Fashion-MNIST')
    try:
        origin = prepare_fashion_mnist.prepare(
            log=lambda message: say(message))
    except (prepare_fashion_mnist.DataNotFoundError, ValueError) as error:
        raise SystemExit(f'[main job] {error}')
    origin = {
        'dst':
        'already there',
        'dst-gz':
        'un-gzipped in place',
        'src':
        f'from {prepare_fashion_mnist.DEBIAN_DIR}',
        'apt':
        f'from the Debian package {prepare_fashion_mnist.DEBIAN_PACKAGE}'
        ', installed now',
    }.get(origin, origin)
    say(f'Fashion-MNIST is in {prepare_fashion_mnist.DEFAULT_DST} ({origin})')

    work_root = osp.abspath(args.work_root)
    results = {}
    for seed in args.seeds:
        teacher, mgd, student = runs_for_seed(work_root, seed)
        for step, run in ((2, teacher), (3, mgd), (4, student)):
            say(f'step {step}, seed {seed}: {run.name}')
            train(run)
        say(f'step 5, seed {seed}: evaluation')
        results[seed] = dict(
            teacher=evaluate(teacher, args.eval_split),
            mgd=evaluate(mgd, args.eval_split),
            student=evaluate(student, args.eval_split))
    table = format_table(results, args.eval_split)
    _write_json(
        osp.join(work_root, f'results_{args.eval_split}.json'), {
            str(seed): value
            for seed, value in results.items()
        })
    print('\n' + table, flush=True)
    say(f'done in {time.monotonic() - start:.0f} s (after set-up)')


if __name__ == '__main__':
    main(sys.argv[1:])
