"""Benchmark one MGD training step against its floor, side by side on CPU.

Target: an MGD-AMP training step costs at most 1.05x the floor.

* FLOOR: a plain, frozen teacher forward (eval, ``no_grad``) plus a plain
  student forward/backward with its classification loss and an SGD
  (momentum) step, through the same MMEngine machinery as the MGD step
  (``BaseModel.train_step``: data preprocessor, forward in ``mode='loss'``,
  ``parse_losses``, ``OptimWrapper.update_params``). Teacher and student
  are separate copies built from the config's own dicts exactly as
  MMPretrain builds them (in-place ReLUs, no recorder hooks), with the
  algorithm's weights loaded. The teacher runs with ``mode='loss'``, as
  MMRazor's ``SingleTeacherDistill.loss`` runs it, so both columns do the
  same teacher work (``mode='tensor'`` would only skip the teacher head's
  cross-entropy on N x 1000 logits, microseconds, and make the floor do
  something the MGD step does not).
* MGD: ``algo.train_step(data, optim_wrapper)``, the optimiser over every
  trainable parameter of the algorithm (student + distiller BN connectors).
* Unless ``--no-decompose``: the floor step again, on the algorithm's own
  teacher and student (ReLUs made non-in-place by the algorithm so that the
  recorded inputs stay pre-ReLU, recorder hooks registered but idle). The
  gap between it and the floor is what those networks cost by themselves.

All get the same input batch, the same (shared) data preprocessor, the
same optimiser settings and a fixed ``torch.set_num_threads``; they run
interleaved, one step each per round, the order rotating every round
(floor MGD, MGD floor, ...), so that drift hits all alike.
The verdict is the median, over rounds, of the ratio MGD step / floor
step of the same round: pairing the steps of one round cancels the slow
drift of a shared machine, which the ratio of two separate medians does
not. ``busy`` (CPU s per wall s) flags steps that shared the cores with
other processes.

Then, unless ``--profile-steps 0``, the floor step and the MGD step are
profiled with ``torch.profiler``; the per-operator self CPU time of the
floor is subtracted from the MGD step's, and the distiller's parts
(reducers, BN connectors, losses) are labelled with ``record_function`` by
wrapping their ``forward`` here, without touching the plugin's code.

``--reducer`` times other reducers (RandomDropReducer, MaxPoolReducer,
SparseMatchReducer) by overriding the config's reducer (``distiller.reducer``
in the compact form, ``*_reducer`` connectors in the explicit one).

Usage::

    python tools/analysis_tools/benchmark_train_step.py \
        [--config configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py] \
        [--batch-size 16] [--img-size 112] [--steps 30] [--warmup 3] \
        [--threads 2] [--reducer AbsMaxPoolReducer RandomDropReducer ...] \
        [--profile-steps 4] [--no-decompose]
"""
import argparse
import copy
import functools
import gc
import os.path as osp
import shlex
import statistics
import sys
import time

import torch

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, REPO_ROOT)
from mmengine.config import Config  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402
from mmrazor.registry import MODELS  # noqa: E402

import mgd_plugin  # noqa: E402,F401  (compat layer before mmrazor.models)

DEFAULT_CONFIG = 'configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py'
TARGET_RATIO = 1.05
REDUCERS = ('AbsMaxPoolReducer', 'RandomDropReducer', 'MaxPoolReducer',
            'SparseMatchReducer')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument(
        '--img-size',
        type=int,
        default=112,
        help='square input side; at 112 one floor + MGD pair '
        'of steps takes about 1 s on 2 CPU cores')
    parser.add_argument(
        '--steps',
        type=int,
        default=30,
        help='timed steps of each kind (after warm-up)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=3,
        help='untimed steps of each kind first')
    parser.add_argument(
        '--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument(
        '--matching-batches',
        type=int,
        default=2,
        help='random batches in the matching pass')
    parser.add_argument(
        '--reducer',
        nargs='+',
        default=None,
        choices=REDUCERS,
        help='time these reducers (overriding the config\'s '
        'distiller.reducer or *_reducer connectors); '
        'default: the config\'s')
    parser.add_argument(
        '--profile-steps',
        type=int,
        default=4,
        help='steps of each kind under torch.profiler, for '
        'the overhead breakdown (0: no profile)')
    parser.add_argument('--profile-rows', type=int, default=12)
    parser.add_argument(
        '--no-decompose',
        dest='decompose',
        action='store_false',
        help='do not also time the floor step on the algorithm\'s own '
        'networks (non-in-place ReLUs, idle recorder hooks)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


# --------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------
class FloorModel(BaseModel):
    """Frozen teacher forward + student forward/backward, nothing else.

    ``train_step`` is MMEngine's, as for the algorithm: preprocess, forward
    in ``mode='loss'``, ``parse_losses``, ``update_params``.
    """

    def __init__(self, teacher, student, data_preprocessor):
        super().__init__(data_preprocessor=data_preprocessor)
        self.teacher = teacher
        self.student = student
        for param in self.teacher.parameters():
            param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # BN statistics frozen, like teacher_norm_eval
        return self

    def forward(self, inputs, data_samples=None, mode='loss'):
        assert mode == 'loss'
        with torch.no_grad():
            self.teacher(inputs, data_samples, mode='loss')
        return self.student(inputs, data_samples, mode='loss')


def build_config(path, reducer):
    cfg = Config.fromfile(path)
    cfg.model.teacher_ckpt = None  # nothing can be downloaded here
    if reducer is not None:
        distiller = cfg.model.distiller
        found = False
        # Compact form: distiller.reducer, and per-position overrides.
        if distiller.get('reducer') is not None:
            distiller.reducer.type = reducer
            found = True
        for position in distiller.get('positions') or []:
            if position.get('reducer') is not None:
                position.reducer.type = reducer
                found = True
        # Explicit MMRazor form: reducer connectors ``*_reducer``.
        for name, connector in (distiller.get('connectors') or {}).items():
            if name.endswith('_reducer'):
                connector.type = reducer
                found = True
        if not found:
            raise ValueError(f'{path}: found no reducer to override (neither '
                             'model.distiller.reducer nor connectors named '
                             '*_reducer).')
    return cfg


def build_models(cfg):
    teacher_cfg = copy.deepcopy(cfg.model.teacher)
    student_cfg = copy.deepcopy(cfg.model.architecture)
    algo = MODELS.build(cfg.model)
    teacher = MODELS.build(teacher_cfg)
    student = MODELS.build(student_cfg)
    # The same numbers as the algorithm's networks (denormals and NaNs cost
    # differently on a CPU, so the weights must match, not only the shapes).
    teacher.load_state_dict(algo.teacher.state_dict())
    student.load_state_dict(algo.student.state_dict())
    floor = FloorModel(teacher, student, algo.data_preprocessor)
    return algo, floor


def make_optim_wrapper(module):
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    return OptimWrapper(optimizer), sum(p.numel() for p in params)


def random_batch(generator, batch_size, img_size, num_classes=1000):
    images = torch.randint(
        0,
        256, (batch_size, 3, img_size, img_size),
        dtype=torch.uint8,
        generator=generator)
    labels = torch.randint(0, num_classes, (batch_size, ), generator=generator)
    return dict(
        inputs=list(images.unbind(0)),
        data_samples=[
            DataSample().set_gt_label(int(label)) for label in labels
        ])


# --------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------
def time_interleaved(steps, warmup, runners):
    """Run the runners in turn, one step each per round, the order rotating
    every round (A B, B A, A B, ... for two) so that drift and what the
    previous step left behind (caches, allocator) hit all alike.

    Returns, per runner, the wall-clock seconds of every timed step and the
    process CPU seconds (all threads) of every timed step.
    """
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    order = list(runners.items())
    gc.collect()
    for index in range(warmup + steps):
        shift = index % len(order)
        for name, run in order[shift:] + order[:shift]:
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            elapsed = time.perf_counter() - start
            elapsed_cpu = time.process_time() - start_cpu
            if index >= warmup:
                wall[name].append(elapsed)
                cpu[name].append(elapsed_cpu)
    return wall, cpu


def summarise(samples, cpu_samples):
    return dict(
        median=statistics.median(samples),
        mean=statistics.fmean(samples),
        stdev=statistics.stdev(samples) if len(samples) > 1 else 0.0,
        min=min(samples),
        # CPU seconds per wall second: about --threads on an idle machine,
        # lower when other processes take the cores.
        busy=sum(cpu_samples) / sum(samples))


# --------------------------------------------------------------------------
# Profile.
# --------------------------------------------------------------------------
def label_forward(module, label):
    """Wrap ``module.forward`` (instance attribute) in a record_function."""
    inner = module.forward

    @functools.wraps(inner)
    def forward(*args, **kwargs):
        with torch.profiler.record_function(label):
            return inner(*args, **kwargs)

    module.forward = forward


def label_distiller(algo):
    distiller = algo.distiller
    for name, connector in distiller.connectors.items():
        kind = 'reducer' if name.endswith('_reducer') else 'connector'
        label_forward(connector, f'mgd::{kind}')
    for loss in distiller.distill_losses.values():
        label_forward(loss, 'mgd::loss')
    inner = distiller.compute_distill_losses

    def compute_distill_losses():
        with torch.profiler.record_function('mgd::compute_distill_losses'):
            return inner()

    distiller.compute_distill_losses = compute_distill_losses


def profile_interleaved(runners, steps):
    """Profile ``steps`` steps of every runner, interleaved (one profiler
    session per step). Returns, per runner, the per-step self and
    inclusive CPU time (us) and call count by op key, and the wall time per
    step (s) with the profiler on."""
    from torch.profiler import ProfilerActivity, profile
    stats = {
        name: dict(self={}, total={}, calls={}, wall=0.0)
        for name in runners
    }
    for _ in range(steps):
        for name, run in runners.items():
            entry = stats[name]
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                run()
                entry['wall'] += (time.perf_counter() - start) / steps
            for event in prof.key_averages():
                for field, value in (('self', event.self_cpu_time_total),
                                     ('total', event.cpu_time_total),
                                     ('calls', event.count)):
                    entry[field][event.key] = (
                        entry[field].get(event.key, 0.0) + value / steps)
    return stats


RELU_OPS = ('aten::relu', 'aten::relu_', 'aten::clamp_min', 'aten::clamp_min_')
REGIONS = ('mgd::reducer', 'mgd::connector', 'mgd::loss')


def print_profile(floor_prof, mgd_prof, rows):

    def delta(key):
        return (mgd_prof['self'].get(key, 0.0) -
                floor_prof['self'].get(key, 0.0)) / 1e3

    print('\nProfile (torch.profiler, CPU, mean per step, floor and MGD '
          'interleaved)')
    total_self = {
        name:
        sum(v for k, v in p['self'].items()
            if not k.startswith('ProfilerStep')) / 1e3
        for name, p in (('floor', floor_prof), ('mgd', mgd_prof))
    }
    extra = total_self['mgd'] - total_self['floor']
    print(f'  wall with the profiler on: floor {floor_prof["wall"] * 1e3:.1f}'
          f' ms, MGD {mgd_prof["wall"] * 1e3:.1f} ms; sum of self CPU time: '
          f'floor {total_self["floor"]:.1f} ms, MGD {total_self["mgd"]:.1f} '
          f'ms, extra {extra:+.1f} ms')

    regions = {key: mgd_prof['total'].get(key, 0.0) / 1e3 for key in REGIONS}
    relu = sum(delta(key) for key in RELU_OPS)
    bn_backward = delta('aten::native_batch_norm_backward')
    print('  where the extra goes (ms per step):')
    for key in REGIONS:
        calls = mgd_prof['calls'].get(key, 0)
        print(f'    {key + " forward":<42} {regions[key]:+7.2f}  '
              f'({calls:.0f} calls, inclusive)')
    print(f'    {"non-in-place ReLUs (relu/clamp_min ops)":<42} {relu:+7.2f}')
    print(f'    {"BatchNorm backward (the BN connectors)":<42} '
          f'{bn_backward:+7.2f}')
    rest = extra - sum(regions.values()) - relu - bn_backward
    print(f'    {"rest (loss backward, recorders, noise)":<42} {rest:+7.2f}')

    diffs = []
    for key in set(floor_prof['self']) | set(mgd_prof['self']):
        if key.startswith('mgd::') or key.startswith('ProfilerStep'):
            continue
        dcalls = mgd_prof['calls'].get(key, 0.0) - floor_prof['calls'].get(
            key, 0.0)
        diffs.append((delta(key), dcalls, key))
    diffs.sort(key=lambda item: -abs(item[0]))
    print(f'  largest per-op differences, MGD minus floor (self CPU, top '
          f'{rows}):')
    print(f'    {"op":<44} {"floor ms":>9} {"MGD ms":>9} {"delta":>8} '
          f'{"d calls":>8}')
    for change, dcalls, key in diffs[:rows]:
        floor_ms = floor_prof['self'].get(key, 0) / 1e3
        mgd_ms = mgd_prof['self'].get(key, 0) / 1e3
        print(f'    {key[:44]:<44} {floor_ms:9.2f} {mgd_ms:9.2f} '
              f'{change:+8.2f} {dcalls:+8.0f}')


# --------------------------------------------------------------------------
def bench_reducer(args, reducer, generator):
    cfg = build_config(args.config, reducer)
    algo, floor = build_models(cfg)
    reducer_name = type(algo.distiller.reducer(
        algo.distiller.positions[0])).__name__
    algo_optim, algo_params = make_optim_wrapper(algo)
    floor_optim, floor_params = make_optim_wrapper(floor)

    batches = [
        random_batch(generator, args.batch_size, args.img_size)
        for _ in range(args.matching_batches)
    ]
    start = time.perf_counter()
    algo.matching_pass(
        batches,
        num_samples=args.batch_size * args.matching_batches,
        show_progress=False)
    matching_time = time.perf_counter() - start
    assert algo.matching_installed

    algo.train()
    floor.train()
    data = random_batch(generator, args.batch_size, args.img_size)
    last = {}

    def run_floor():
        last['floor'] = floor.train_step(data, floor_optim)

    def run_mgd():
        last['mgd'] = algo.train_step(data, algo_optim)

    runners = dict(floor=run_floor, mgd=run_mgd)
    if args.decompose:
        # The floor step on the algorithm's own networks: their ReLUs are
        # not in-place (so that the recorded inputs stay pre-ReLU) and the
        # recorder hooks are registered but idle. Its own optimiser; it
        # moves the algorithm's student too, which does not matter here.
        nets = FloorModel(algo.teacher, algo.student, algo.data_preprocessor)
        nets.train()
        nets_optim, _ = make_optim_wrapper(nets)

        def run_nets():
            last['nets'] = nets.train_step(data, nets_optim)

        runners = dict(floor=run_floor, nets=run_nets, mgd=run_mgd)
    wall, cpu = time_interleaved(args.steps, args.warmup, runners)
    for name, log_vars in last.items():
        if not torch.isfinite(log_vars['loss']).all():
            print(f'WARNING: the {name} loss is not finite: '
                  f'{float(log_vars["loss"])}')
    result = dict(
        reducer=reducer_name,
        times={name: summarise(wall[name], cpu[name])
               for name in wall},
        paired={
            name:
            statistics.median(
                step / floor for step, floor in zip(wall[name], wall['floor']))
            for name in wall if name != 'floor'
        },
        matching_time=matching_time,
        params=(floor_params, algo_params),
        mgd_losses={
            k: float(v.detach())
            for k, v in last['mgd'].items()
        })
    if args.profile_steps > 0:
        label_distiller(algo)
        profiled = profile_interleaved(
            dict(floor=run_floor, mgd=run_mgd), args.profile_steps)
        result['profile'] = (profiled['floor'], profiled['mgd'])
    return result


def main():
    args = parse_args()
    if not osp.exists(args.config) and osp.exists(
            osp.join(REPO_ROOT, args.config)):
        args.config = osp.join(REPO_ROOT, args.config)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    init_default_scope('mmpretrain')
    command = ' '.join(
        shlex.quote(part) for part in [osp.relpath(sys.executable), *sys.argv])
    print(f'command: {command}')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'batch {args.batch_size} x 3 x {args.img_size} x {args.img_size}, '
          f'{args.steps} timed steps each after {args.warmup} warm-up, '
          'interleaved')

    results = []
    for reducer in (args.reducer or [None]):
        result = bench_reducer(args, reducer, generator)
        results.append(result)
        floor_params, algo_params = result['params']
        print(f'\n[{result["reducer"]}] matching pass '
              f'{result["matching_time"]:.2f} s; trainable parameters floor '
              f'{floor_params:,}, MGD {algo_params:,}; MGD losses: ' +
              ', '.join(f'{k}={v:.4g}'
                        for k, v in result['mgd_losses'].items()))
        if 'profile' in result:
            print_profile(*result['profile'], rows=args.profile_rows)

    labels = dict(floor='floor', nets='floor, MGD nets')
    print(f'\n{"step time (s)":<24} {"median":>7} {"mean":>7} {"stdev":>7} '
          f'{"min":>7} {"busy":>5}   vs floor: paired, medians, means')
    verdicts = []
    for result in results:
        times = result['times']
        floor = times['floor']
        for name, stats in times.items():
            label = labels.get(name, result['reducer'] + ' step')
            ratios = ('' if name == 'floor' else
                      f'   {result["paired"][name]:.3f}x, '
                      f'{stats["median"] / floor["median"]:.3f}x, '
                      f'{stats["mean"] / floor["mean"]:.3f}x')
            print(f'{label[:24]:<24} {stats["median"]:7.3f} '
                  f'{stats["mean"]:7.3f} {stats["stdev"]:7.3f} '
                  f'{stats["min"]:7.3f} {stats["busy"]:5.2f}{ratios}')
        verdicts.append((result['reducer'], result['paired']['mgd']))
    print('(busy: CPU seconds per wall second of the process; below '
          f'{args.threads} means other processes shared the cores)')
    for reducer, ratio in verdicts:
        verdict = 'PASS' if ratio <= TARGET_RATIO else 'FAIL'
        print(f'{verdict}: MGD ({reducer}) step / floor = {ratio:.3f} '
              f'(median of paired ratios) '
              f'{"<=" if ratio <= TARGET_RATIO else ">"} '
              f'{TARGET_RATIO}')


if __name__ == '__main__':
    main()
