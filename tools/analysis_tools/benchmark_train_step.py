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

``--compare`` times instead, in one interleaved run, the step of every
method of the recipe on the same batch and weights: the student alone (no
teacher), the floor, KD (the config's KD sibling: MMRazor
``SingleTeacherDistill`` + ``KLDivergence``), OFD (its OFD sibling: MMRazor
``OverhaulFeatureDistillation`` with ``OFDAtPositionsDistiller``) and MGD
with each reducer (all four unless ``--reducer``); the siblings are found
next to the config (``kd_<pair>.py``, ``ofd_<pair>.py``, also in
``../kd``/``../ofd``) or given with ``--kd-config``/``--ofd-config``. Each
gets its ratio to the floor (median of paired ratios) and its memory, in
extra steps after the timed ones (``--memory-steps``):

* ``step_peak_mb``: the peak of tensor memory allocated during one
  training step above what was allocated when it started (activations,
  gradients, temporaries; the largest over the memory steps). On CUDA,
  ``torch.cuda.max_memory_allocated`` after
  ``torch.cuda.reset_peak_memory_stats``, minus ``memory_allocated``
  before the step. On the CPU, the running sum of the allocations and
  frees that ``torch.profiler`` (``profile_memory=True``) records from
  PyTorch's CPU allocator during the step: tensors only, not the Python
  heap nor oneDNN's internal scratch buffers;
* ``state_mb``: what persists between steps: parameters, buffers and
  optimiser state of the method's model;
* ``peak_mb``: their sum, the memory the method needs at its peak.

``--device cuda`` runs everything on the GPU (each step is synchronised
before its time is taken) and ``--amp`` uses MMEngine's ``AmpOptimWrapper``
(float16 autocast, loss scaling); both need CUDA and say so without it.

Every figure is written to ``benchmarks/results/train_step[_methods]
[_cuda][_amp].json`` (``--out``).

Usage::

    python tools/analysis_tools/benchmark_train_step.py \
        [--config configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py] \
        [--batch-size 16] [--img-size 112] [--steps 30] [--warmup 3] \
        [--threads 2] [--reducer AbsMaxPoolReducer RandomDropReducer ...] \
        [--profile-steps 4] [--no-decompose] [--compare] \
        [--memory-steps 2] [--kd-config CFG] [--ofd-config CFG] \
        [--device cpu|cuda] [--amp] [--out JSON]
"""
import argparse
import copy
import functools
import gc
import os.path as osp
import statistics
import sys
import time

import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.abspath(osp.join(HERE, '..', '..'))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, HERE)
import benchmark_record  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.optim import AmpOptimWrapper, OptimWrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402
from mmrazor.registry import MODELS  # noqa: E402

import mgd_plugin  # noqa: E402,F401  (compat layer before mmrazor.models)

DEFAULT_CONFIG = 'configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py'
TARGET_RATIO = 1.05
REDUCERS = ('AbsMaxPoolReducer', 'RandomDropReducer', 'MaxPoolReducer',
            'SparseMatchReducer')


def parse_args(argv=None):
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
        'the overhead breakdown (0: no profile; not with --compare or on '
        'CUDA)')
    parser.add_argument('--profile-rows', type=int, default=12)
    parser.add_argument(
        '--no-decompose',
        dest='decompose',
        action='store_false',
        help='do not also time the floor step on the algorithm\'s own '
        'networks (non-in-place ReLUs, idle recorder hooks)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--compare',
        action='store_true',
        help='time the student alone, the floor, KD, OFD and MGD with each '
        'reducer in one interleaved run, with their memory')
    parser.add_argument(
        '--memory-steps',
        type=int,
        default=2,
        help='--compare: steps of each method whose memory is measured, '
        'after the timed ones')
    parser.add_argument(
        '--kd-config',
        default=None,
        help='--compare: the KD config (default: the config\'s kd_ sibling)')
    parser.add_argument(
        '--ofd-config',
        default=None,
        help='--compare: the OFD config (default: its ofd_ sibling)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision (MMEngine AmpOptimWrapper, float16); '
        'needs --device cuda')
    benchmark_record.add_out_argument(parser,
                                      'train_step[_methods][_cuda][_amp]')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type not in ('cpu', 'cuda'):
        parser.error(f'--device {args.device}: use cpu or cuda[:N]')
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available here '
                     f'(torch {torch.__version__}, '
                     f'{torch.cuda.device_count()} CUDA devices)')
    if args.amp and device.type != 'cuda':
        parser.error('--amp needs --device cuda: MMEngine\'s '
                     'AmpOptimWrapper (float16 autocast and loss scaling) '
                     'runs on GPUs only')
    if args.compare and args.memory_steps < 1:
        parser.error('--memory-steps must be at least 1 with --compare')
    if args.out is None:
        name = 'train_step' + '_methods' * args.compare + (
            '_cuda' if device.type == 'cuda' else '') + '_amp' * args.amp
        args.out = benchmark_record.default_path(name)
    return args


# --------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------
class FloorModel(BaseModel):
    """Frozen teacher forward + student forward/backward, nothing else;
    without a teacher, the student alone.

    ``train_step`` is MMEngine's, as for the algorithm: preprocess, forward
    in ``mode='loss'``, ``parse_losses``, ``update_params``.
    """

    def __init__(self, teacher, student, data_preprocessor):
        super().__init__(data_preprocessor=data_preprocessor)
        self.teacher = teacher
        self.student = student
        if self.teacher is not None:
            self.teacher.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # BN statistics frozen (teacher_norm_eval)
        return self

    def forward(self, inputs, data_samples=None, mode='loss'):
        assert mode == 'loss'
        if self.teacher is not None:
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


def make_optim_wrapper(module, amp=False):
    """SGD with momentum over the trainable parameters of ``module``, in an
    ``OptimWrapper`` (``AmpOptimWrapper`` with ``amp``); and their count."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    wrapper = AmpOptimWrapper(
        optimizer=optimizer) if amp else OptimWrapper(optimizer)
    return wrapper, sum(p.numel() for p in params)


def input_spec(cfg):
    """(image channels, classes) of a config's model: the length of its
    data preprocessor's ``mean`` (3 without one) and its student head's
    ``num_classes``."""
    preprocessor = cfg.model.get('data_preprocessor') or {}
    mean = preprocessor.get('mean')
    return (len(mean) if mean else 3, cfg.model.architecture.head.num_classes)


def random_batch(generator,
                 batch_size,
                 img_size,
                 num_classes=1000,
                 channels=3):
    images = torch.randint(
        0,
        256, (batch_size, channels, img_size, img_size),
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
def time_interleaved(steps, warmup, runners, sync=None):
    """Run the runners in turn, one step each per round, the order rotating
    every round (A B, B A, A B, ... for two) so that drift and what the
    previous step left behind (caches, allocator) hit all alike. ``sync``
    (e.g. ``torch.cuda.synchronize``) runs before each clock reading.

    Returns, per runner, the wall-clock seconds of every timed step and the
    process CPU seconds (all threads) of every timed step.
    """
    sync = sync or (lambda: None)
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    order = list(runners.items())
    gc.collect()
    for index in range(warmup + steps):
        shift = index % len(order)
        for name, run in order[shift:] + order[:shift]:
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            sync()
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
# Memory.
# --------------------------------------------------------------------------
def state_bytes(model, optim_wrapper):
    """Bytes of what persists between steps: the parameters and buffers of
    ``model`` and the optimiser state (each tensor once)."""
    tensors = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        tensors[tensor.data_ptr()] = tensor
    for state in optim_wrapper.optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                tensors[value.data_ptr()] = value
    return sum(t.numel() * t.element_size() for t in tensors.values())


def step_peak_bytes(run, device):
    """Run one step; the peak of tensor memory allocated during it above
    what was allocated when it started (see the module docstring)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile
    with profile(
            activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    cpu = torch.autograd.DeviceType.CPU
    changes = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == '[memory]' and event.device_type() == cpu)
    held = peak = 0
    for _, nbytes in changes:
        held += nbytes
        peak = max(peak, held)
    return peak


def measure_memory(runners, models, optim_wrappers, device, steps):
    """Per runner: ``step_peak_mb`` (largest over ``steps`` steps, the
    runners taking turns), ``state_mb`` and ``peak_mb``, in MiB."""
    peaks = {name: 0 for name in runners}
    for _ in range(steps):
        for name, run in runners.items():
            gc.collect()
            peaks[name] = max(peaks[name], step_peak_bytes(run, device))
    mib = 2.0**20
    memory = {}
    for name in runners:
        state = state_bytes(models[name], optim_wrappers[name])
        memory[name] = dict(
            step_peak_mb=peaks[name] / mib,
            state_mb=state / mib,
            peak_mb=(peaks[name] + state) / mib)
    return memory


# --------------------------------------------------------------------------
def make_sync(device):
    if device.type == 'cuda':
        return functools.partial(torch.cuda.synchronize, device)
    return None


def bench_reducer(args, reducer, generator):
    device = torch.device(args.device)
    cfg = build_config(args.config, reducer)
    algo, floor = build_models(cfg)
    algo.to(device)
    floor.to(device)
    reducer_name = type(algo.distiller.reducer(
        algo.distiller.positions[0])).__name__
    algo_optim, algo_params = make_optim_wrapper(algo, args.amp)
    floor_optim, floor_params = make_optim_wrapper(floor, args.amp)
    channels, num_classes = input_spec(cfg)

    batches = [
        random_batch(generator, args.batch_size, args.img_size, num_classes,
                     channels) for _ in range(args.matching_batches)
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
    data = random_batch(generator, args.batch_size, args.img_size, num_classes,
                        channels)
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
        nets_optim, _ = make_optim_wrapper(nets, args.amp)

        def run_nets():
            last['nets'] = nets.train_step(data, nets_optim)

        runners = dict(floor=run_floor, nets=run_nets, mgd=run_mgd)
    wall, cpu = time_interleaved(args.steps, args.warmup, runners,
                                 make_sync(device))
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
    if args.profile_steps > 0 and device.type == 'cpu':
        label_distiller(algo)
        profiled = profile_interleaved(
            dict(floor=run_floor, mgd=run_mgd), args.profile_steps)
        result['profile'] = (profiled['floor'], profiled['mgd'])
    return result


# --------------------------------------------------------------------------
# --compare: every method of the recipe.
# --------------------------------------------------------------------------
def sibling_config(config, method):
    """The ``method`` (``kd``, ``ofd``) config of the pair of an MGD config:
    ``<method>_<pair>.py`` beside it or in ``../<method>/``, where the MGD
    config is ``mgd-<reducer>_<pair>.py``."""
    folder, name = osp.split(osp.abspath(config))
    prefix, sep, pair = name.partition('_')
    if not sep or not prefix.startswith('mgd'):
        raise ValueError(f'{config}: not named mgd-<reducer>_<pair>.py, so '
                         f'its {method.upper()} config cannot be found; '
                         f'give it with --{method}-config.')
    candidates = [
        osp.join(folder, f'{method}_{pair}'),
        osp.join(osp.dirname(folder), method, f'{method}_{pair}')
    ]
    for candidate in candidates:
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'{config}: no {method.upper()} config for this pair (looked for ' +
        ', '.join(osp.relpath(c, REPO_ROOT)
                  for c in candidates) + f'); give it with --{method}-config.')


def build_distillation(cfg, teacher_state, student_state):
    """An MMRazor distillation algorithm from a config (a path or a built
    ``Config``), with these weights."""
    if not isinstance(cfg, Config):
        cfg = Config.fromfile(cfg)
    cfg.model.teacher_ckpt = None
    model = MODELS.build(cfg.model)
    model.teacher.load_state_dict(teacher_state)
    model.student.load_state_dict(student_state)
    return model


def bench_methods(args, generator):
    """Time every method in one interleaved run; their memory after."""
    device = torch.device(args.device)
    reducers = args.reducer or list(REDUCERS)
    kd_config = args.kd_config or sibling_config(args.config, 'kd')
    ofd_config = args.ofd_config or sibling_config(args.config, 'ofd')

    # The first MGD algorithm's weights are everyone's.
    cfg = build_config(args.config, reducers[0])
    channels, num_classes = input_spec(cfg)
    algo, floor = build_models(cfg)
    teacher_state = algo.teacher.state_dict()
    student_state = algo.student.state_dict()
    models = dict(
        alone=FloorModel(None, copy.deepcopy(floor.student),
                         algo.data_preprocessor),
        floor=floor,
        kd=build_distillation(kd_config, teacher_state, student_state),
        ofd=build_distillation(ofd_config, teacher_state, student_state))
    algos = {f'mgd:{reducers[0]}': algo}
    for reducer in reducers[1:]:
        algos[f'mgd:{reducer}'] = build_distillation(
            build_config(args.config, reducer), teacher_state, student_state)
    models.update(algos)

    batches = [
        random_batch(generator, args.batch_size, args.img_size, num_classes,
                     channels) for _ in range(args.matching_batches)
    ]
    matching_times = {}
    for name, model in models.items():
        model.to(device)
    for name, algo in algos.items():
        start = time.perf_counter()
        algo.matching_pass(
            batches,
            num_samples=args.batch_size * args.matching_batches,
            show_progress=False)
        matching_times[name] = time.perf_counter() - start

    data = random_batch(generator, args.batch_size, args.img_size, num_classes,
                        channels)
    runners, optim_wrappers, params, last = {}, {}, {}, {}
    for name, model in models.items():
        model.train()
        optim_wrappers[name], params[name] = make_optim_wrapper(
            model, args.amp)

        def step(model=model, optim_wrapper=optim_wrappers[name], name=name):
            last[name] = model.train_step(data, optim_wrapper)

        runners[name] = step
    wall, cpu = time_interleaved(args.steps, args.warmup, runners,
                                 make_sync(device))
    memory = measure_memory(runners, models, optim_wrappers, device,
                            args.memory_steps)
    methods = {}
    for name in models:
        loss = last[name]['loss']
        methods[name] = dict(
            times=summarise(wall[name], cpu[name]),
            to_floor_paired=statistics.median(
                step / base for step, base in zip(wall[name], wall['floor'])),
            to_floor_medians=statistics.median(wall[name]) /
            statistics.median(wall['floor']),
            memory=memory[name],
            trainable_params=params[name],
            loss=float(loss.detach()),
            loss_finite=bool(torch.isfinite(loss).all()))
        if name in matching_times:
            methods[name]['matching_pass_s'] = matching_times[name]
    configs = dict(
        alone=args.config,
        floor=args.config,
        kd=kd_config,
        ofd=ofd_config,
        **{name: args.config
           for name in algos})
    for name, path in configs.items():
        methods[name]['config'] = osp.relpath(path, REPO_ROOT)
    return methods


METHOD_LABELS = dict(
    alone='student alone',
    floor='floor (teacher fwd + student)',
    kd='KD',
    ofd='OFD')


def print_methods(methods, threads):
    print(f'\n{"step time (s)":<30} {"median":>7} {"stdev":>7} {"busy":>5} '
          f'{"/ floor":>7} {"state MiB":>9} {"step peak MiB":>13} '
          f'{"peak MiB":>9}')
    for name, row in methods.items():
        label = METHOD_LABELS.get(name, name.replace('mgd:', 'MGD '))
        times, memory = row['times'], row['memory']
        ratio = '' if name == 'floor' else f'{row["to_floor_paired"]:.3f}x'
        print(f'{label[:30]:<30} {times["median"]:7.3f} '
              f'{times["stdev"]:7.3f} {times["busy"]:5.2f} {ratio:>7} '
              f'{memory["state_mb"]:9.1f} {memory["step_peak_mb"]:13.1f} '
              f'{memory["peak_mb"]:9.1f}')
        if not row['loss_finite']:
            print(f'WARNING: the {label} loss is not finite')
    print('(/ floor: median over rounds of step / floor step of the same '
          'round; busy: CPU seconds per wall second of the process, below '
          f'{threads} means other processes shared the cores; step peak: '
          'tensor memory allocated during a step above its start; state: '
          'parameters, buffers, optimiser state)')


def reducer_figures(result):
    """The JSON figures of one reducer of the default mode."""
    floor_params, algo_params = result['params']
    return dict(
        reducer=result['reducer'],
        times=result['times'],
        to_floor_paired=result['paired'],
        matching_pass_s=result['matching_time'],
        trainable_params=dict(floor=floor_params, mgd=algo_params),
        mgd_losses=result['mgd_losses'])


def main(argv=None):
    args = parse_args(argv)
    if not osp.exists(args.config) and osp.exists(
            osp.join(REPO_ROOT, args.config)):
        args.config = osp.join(REPO_ROOT, args.config)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    init_default_scope('mmpretrain')
    command = benchmark_record.command_line(
        [__file__, *(sys.argv[1:] if argv is None else argv)])
    print(f'command: {command}')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'device {args.device}{" with AMP" if args.amp else ""}, '
          f'batch {args.batch_size} x 3 x {args.img_size} x {args.img_size}, '
          f'{args.steps} timed steps each after {args.warmup} warm-up, '
          'interleaved')

    checks = []
    if args.compare:
        methods = bench_methods(args, generator)
        print_methods(methods, args.threads)
        figures = dict(methods=methods)
        verdicts = [(name.replace('mgd:', ''), row['to_floor_paired'])
                    for name, row in methods.items()
                    if name.startswith('mgd:')]
    else:
        figures, verdicts = dict(reducers=[]), []
        results = []
        for reducer in (args.reducer or [None]):
            result = bench_reducer(args, reducer, generator)
            results.append(result)
            figures['reducers'].append(reducer_figures(result))
            floor_params, algo_params = result['params']
            print(
                f'\n[{result["reducer"]}] matching pass '
                f'{result["matching_time"]:.2f} s; trainable parameters '
                f'floor {floor_params:,}, MGD {algo_params:,}; MGD losses: ' +
                ', '.join(f'{k}={v:.4g}'
                          for k, v in result['mgd_losses'].items()))
            if 'profile' in result:
                print_profile(*result['profile'], rows=args.profile_rows)
        print_reducers(results, args.threads)
        verdicts = [(r['reducer'], r['paired']['mgd']) for r in results]
    for reducer, ratio in verdicts:
        passed = ratio <= TARGET_RATIO
        checks.append((f'MGD ({reducer}) step / floor = {ratio:.3f} (median '
                       f'of paired ratios) {"<=" if passed else ">"} '
                       f'{TARGET_RATIO}', passed))
    verdict = benchmark_record.make_verdict(checks)
    for check in verdict['checks']:
        print(f'{"PASS" if check["passed"] else "FAIL"}: {check["check"]}')
    settings = {k: v for k, v in vars(args).items() if k != 'out'}
    record = benchmark_record.make_record(
        'train_step_methods' if args.compare else 'train_step',
        figures,
        verdict,
        device=args.device,
        command=command,
        settings=settings)
    print('wrote', benchmark_record.write_record(record, args.out))
    return 0 if verdict['passed'] else 1


def print_reducers(results, threads):
    labels = dict(floor='floor', nets='floor, MGD nets')
    print(f'\n{"step time (s)":<24} {"median":>7} {"mean":>7} {"stdev":>7} '
          f'{"min":>7} {"busy":>5}   vs floor: paired, medians, means')
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
    print('(busy: CPU seconds per wall second of the process; below '
          f'{threads} means other processes shared the cores)')


if __name__ == '__main__':
    sys.exit(main())
