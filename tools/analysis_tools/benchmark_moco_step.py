"""Benchmark a MoCo-v2 + MGD training step against a MoCo-v2 step plus a
teacher forward, side by side.

Target: a MoCoMGD step costs at most 1.10x the floor.

* MOCO: a ``ConfigurableMoCo`` step (the student alone): query forward and
  backward, momentum update, key forward, queue update, SGD step, through
  MMEngine's ``BaseModel.train_step``.
* FLOOR: the same MoCo step plus a frozen teacher backbone forward
  (eval, ``no_grad``) on the query view: what any distillation from that
  teacher must at least cost. The teacher is built from the config's
  ``teacher_backbone`` exactly as MMPretrain builds it (in-place ReLUs, no
  recorder hooks).
* MGD: ``MoCoMGD.train_step``: the floor's work plus the recorders, the
  reducers, the student BN connectors and the MGD losses (and non-in-place
  ReLUs in both backbones, so that the recorded features stay pre-ReLU).
* Unless ``--no-decompose``: the floor again with the ReLUs of its query
  backbone and teacher made non-in-place as in MoCoMGD ("floor, MGD
  nets"): what those networks cost by themselves.

All three start from the same weights, get the same two-view batch and
the same optimiser settings, and run interleaved with a rotating order
(``time_interleaved`` of benchmark_train_step.py); the verdict is the
median over rounds of the ratio MGD step / floor step of the same round.
Every figure is written to ``benchmarks/results/moco_step.json``
(``--out``).

Usage::

    python tools/analysis_tools/benchmark_moco_step.py \
        [--config configs/mgd_moco/mocov2-mgd_resnet50-resnet18_8xb32-coslr-200e_in1k.py] \
        [--batch-size 16] [--img-size 112] [--steps 20] [--warmup 3] \
        [--threads 2] [--out JSON]
"""  # noqa: E501
import argparse
import copy
import os.path as osp
import statistics
import sys

import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.abspath(osp.join(HERE, '..', '..'))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, HERE)
import benchmark_record  # noqa: E402
from benchmark_train_step import summarise  # noqa: E402
from benchmark_train_step import make_optim_wrapper, time_interleaved
from mmengine.config import Config  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import mgd_plugin  # noqa: E402,F401
from mgd_plugin.models.selfsup.moco_mgd import inplace_off  # noqa: E402

DEFAULT_CONFIG = ('configs/mgd_moco/'
                  'mocov2-mgd_resnet50-resnet18_8xb32-coslr-200e_in1k.py')
TARGET_RATIO = 1.10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=112)
    parser.add_argument(
        '--steps',
        type=int,
        default=20,
        help='timed steps of each kind (after warm-up)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--no-decompose',
        dest='decompose',
        action='store_false',
        help='do not time the floor with non-in-place ReLUs')
    benchmark_record.add_out_argument(parser, 'moco_step')
    return parser.parse_args(argv)


class MoCoWithTeacherForward(BaseModel):
    """A MoCo step plus a frozen teacher backbone forward on the query
    view, through MMEngine's ``train_step``."""

    def __init__(self, moco, teacher):
        super().__init__(data_preprocessor=moco.data_preprocessor)
        self.moco = moco
        self.teacher = teacher.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, inputs, data_samples=None, mode='loss'):
        assert mode == 'loss'
        with torch.no_grad():
            self.teacher(inputs[0])
        return self.moco.loss(inputs, data_samples)


def build_models(cfg):
    """MoCoMGD, and from the same weights a MoCo, a MoCo + teacher, and a
    MoCo + teacher whose query backbone and teacher have non-in-place
    ReLUs."""
    algo_cfg = copy.deepcopy(cfg.model)
    algo_cfg.teacher_ckpt = None  # nothing can be downloaded here
    if 'data_preprocessor' in cfg:
        algo_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    moco_cfg = copy.deepcopy(algo_cfg)
    moco_cfg.type = 'ConfigurableMoCo'
    for key in ('teacher_backbone', 'teacher_ckpt', 'distiller'):
        moco_cfg.pop(key)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        algo = MODELS.build(algo_cfg)
        mocos = [MODELS.build(copy.deepcopy(moco_cfg)) for _ in range(3)]
        teachers = [
            MODELS.build(copy.deepcopy(algo_cfg.teacher_backbone))
            for _ in range(2)
        ]
    student_state = {
        k: v
        for k, v in algo.state_dict().items()
        if not k.startswith(('teacher_backbone.', 'distiller.',
                             'matching_epoch'))
    }
    for moco in mocos:
        moco.load_state_dict(student_state)
    for teacher in teachers:
        teacher.load_state_dict(algo.teacher_backbone.state_dict())
    inplace_off(mocos[2].backbone)
    inplace_off(teachers[1])
    return (algo, mocos[0], MoCoWithTeacherForward(mocos[1], teachers[0]),
            MoCoWithTeacherForward(mocos[2], teachers[1]))


def random_views(generator, batch_size, img_size):

    def view():
        return torch.randint(
            0,
            256, (batch_size, 3, img_size, img_size),
            dtype=torch.uint8,
            generator=generator)

    return dict(inputs=[view(), view()], data_samples=None)


def main(argv=None):
    args = parse_args(argv)
    if not osp.exists(args.config):
        args.config = osp.join(REPO_ROOT, args.config)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    command = benchmark_record.command_line(
        [__file__, *(sys.argv[1:] if argv is None else argv)])
    print(f'command: {command}')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'batch 2 views x {args.batch_size} x 3 x {args.img_size}^2, '
          f'{args.steps} timed steps each after {args.warmup} warm-up, '
          'interleaved')

    cfg = Config.fromfile(args.config)
    algo, moco, floor, nets = build_models(cfg)
    # A matching on random images: the reducers need groups.
    matching = random_views(generator, args.batch_size, args.img_size)
    algo.matching_pass([dict(inputs=matching['inputs'][0], data_samples=None)],
                       show_progress=False)
    data = random_views(generator, args.batch_size, args.img_size)
    runners, last = {}, {}
    models = [('moco', moco), ('floor', floor), ('mgd', algo)]
    if args.decompose:
        models.insert(2, ('nets', nets))
    for name, model in models:
        model.train()
        optim_wrapper, _ = make_optim_wrapper(model)

        def step(model=model, optim_wrapper=optim_wrapper, name=name):
            last[name] = model.train_step(data, optim_wrapper)

        runners[name] = step
    wall, cpu = time_interleaved(args.steps, args.warmup, runners)
    for name, log_vars in last.items():
        if not torch.isfinite(log_vars['loss']).all():
            print(f'WARNING: the {name} loss is not finite')
    mgd_losses = {k: float(v.detach()) for k, v in last['mgd'].items()}
    print('MGD losses: ' + ', '.join(f'{k}={v:.4g}'
                                     for k, v in mgd_losses.items()))

    labels = dict(
        moco='MoCo step',
        floor='MoCo + teacher forward',
        nets='floor, MGD nets',
        mgd='MoCo + MGD step')
    print(f'\n{"step time (s)":<24} {"median":>7} {"mean":>7} {"stdev":>7} '
          f'{"min":>7} {"busy":>5}   vs floor (paired median)')
    steps = {}
    for name, _ in models:
        stats = summarise(wall[name], cpu[name])
        ratio = statistics.median(
            step / base for step, base in zip(wall[name], wall['floor']))
        steps[name] = dict(
            label=labels[name], times=stats, to_floor_paired=ratio)
        print(f'{labels[name]:<24} {stats["median"]:7.3f} '
              f'{stats["mean"]:7.3f} {stats["stdev"]:7.3f} '
              f'{stats["min"]:7.3f} {stats["busy"]:5.2f}   {ratio:.3f}x')
    ratio = steps['mgd']['to_floor_paired']
    print('(busy: CPU seconds per wall second of the process; below '
          f'{args.threads} means other processes shared the cores)')
    passed = ratio <= TARGET_RATIO
    verdict = benchmark_record.make_verdict([
        (f'MoCo + MGD step / (MoCo step + teacher forward) = {ratio:.3f} '
         f'(median of paired ratios) {"<=" if passed else ">"} '
         f'{TARGET_RATIO}', passed)
    ])
    print(f'{"PASS" if passed else "FAIL"}: {verdict["checks"][0]["check"]}')
    record = benchmark_record.make_record(
        'moco_step',
        dict(steps=steps, mgd_losses=mgd_losses),
        verdict,
        command=command,
        settings={
            k: v
            for k, v in vars(args).items() if k != 'out'
        })
    print('wrote', benchmark_record.write_record(record, args.out))
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
