"""What one MGD matching pass costs: per rank under DDP, against a plain
forward of both networks, and as a share of a training epoch.

1. Per rank, with 1 and with R processes. The reference makes every rank
   run the pass over all ``num_samples`` images (a one-replica sampler) so
   that all ranks hold the same costs. Here each rank runs its share of a
   rank-partitioned dataloader and the costs are summed. The pass of the
   config's model (random weights) runs on its matching data with world
   sizes 1 and R (gloo processes on the CPU, one thread each, images
   loaded in the measured process); it prints the images and seconds per
   rank.
2. Against a plain eval forward (target: at most 1.10x). In one process,
   on the same ``--num-samples`` images held in memory (so that loading
   counts for neither), ``--repeats`` rounds of: the matching pass
   (teacher and student forwards with the recorders, the cost sums, the
   solve, the install) and a plain forward of the teacher and the student
   without gradients (MMPretrain networks built from the config's dicts,
   in-place ReLUs, no hooks, the algorithm's weights), the order
   alternating; the ratio is the median of the rounds' pass / forward.
3. Its share of an epoch of the config's recipe, from per-image costs
   measured in that process: ``c_pass`` (seconds of the pass per matching
   image) and ``c_step`` (seconds of an MGD training step, batch
   ``--train-batch-size``, per training image)::

       share = N_m * c_pass / (N_m * c_pass + N_t * c_step)

   ``N_m``: the images of one matching (the config's ``MatchingUpdateHook``
   ``num_samples``), ``N_t``: the training images of an epoch (the length
   of the config's training set, or ``--train-images``). That is the
   share of an epoch that has a matching (every ``interval`` epochs);
   under DDP both terms divide by the number of ranks, so the share is the
   same (communication aside).

``--data random`` uses random images of ``--img-size`` instead of the
config's matching data, for configs whose data is not on this machine
(ImageNet); its training images still need ``--train-images``.

Prints the tables and a PASS/FAIL verdict and writes every figure to
``benchmarks/results/matching_pass_<config name>.json`` (``--out``)::

    python tools/analysis_tools/benchmark_matching_pass.py \\
        configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py \\
        --num-samples 2048 --world-sizes 1 2
    python tools/analysis_tools/benchmark_matching_pass.py \\
        configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py --data random \\
        --img-size 224 --num-samples 256 --world-sizes 1 \\
        --train-images 1281167
"""
import argparse
import math
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.utils.distributed import get_free_port

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.abspath(osp.join(HERE, '..', '..'))
TARGET_RATIO = 1.10


def parse_args(argv=None):
    sys.path.insert(0, HERE)
    import benchmark_record

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--num-samples',
        type=int,
        default=2048,
        help='images of the measured matching passes')
    parser.add_argument(
        '--world-sizes',
        type=int,
        nargs='*',
        default=[1, 2],
        help='part 1: the process counts (none: skip it)')
    parser.add_argument(
        '--data',
        choices=['config', 'random'],
        default='config',
        help='the config\'s matching dataloader, or random images')
    parser.add_argument(
        '--img-size',
        type=int,
        default=None,
        help='square side of the random images (--data random)')
    parser.add_argument(
        '--repeats',
        type=int,
        # Single rounds on a 2-core machine vary by 15-20%: with 3 the
        # median ratio swung from 1.07 to 1.27 between two runs (measured).
        default=7,
        help='part 2: rounds of matching pass and plain forward')
    parser.add_argument(
        '--train-steps',
        type=int,
        default=5,
        help='part 3: timed MGD training steps (after one warm-up step)')
    parser.add_argument(
        '--train-batch-size',
        type=int,
        default=None,
        help='part 3: default: the config\'s train_dataloader batch size')
    parser.add_argument(
        '--train-images',
        type=int,
        default=None,
        help='part 3: training images per epoch (default: the length of '
        'the config\'s training set; ImageNet-1k: 1281167)')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='parts 2 and 3: torch.set_num_threads')
    parser.add_argument('--seed', type=int, default=0)
    benchmark_record.add_out_argument(parser, 'matching_pass_<config name>')
    args = parser.parse_args(argv)
    if args.data == 'random' and not args.img_size:
        parser.error('--data random needs --img-size')
    if args.num_samples < 1 or args.repeats < 1 or args.train_steps < 1:
        parser.error('--num-samples, --repeats and --train-steps must be '
                     'positive')
    if args.out is None:
        name = osp.splitext(osp.basename(args.config))[0]
        args.out = benchmark_record.default_path(f'matching_pass_{name}')
    return args


def setup_imports():
    """The plugin and the toolbox, in this process (also a spawned one)."""
    for path in (REPO_ROOT, HERE):
        if path not in sys.path:
            sys.path.insert(0, path)
    import mgd_plugin  # noqa: F401


def load_config(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmrazor'))
    cfg.model.teacher_ckpt = None  # random weights; nothing is downloaded
    return cfg


def matching_hook(cfg):
    hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h.get('type') == 'MatchingUpdateHook'
    ]
    if not hooks:
        raise ValueError('the config has no MatchingUpdateHook in '
                         'custom_hooks: it is not an MGD config.')
    return hooks[0]


def random_batches(num_images, batch_size, img_size, cfg, seed):
    """Batches of random images (and labels) for the data preprocessor."""
    from benchmark_train_step import input_spec, random_batch
    channels, num_classes = input_spec(cfg)
    generator = torch.Generator().manual_seed(seed)
    sizes = [batch_size] * (num_images // batch_size)
    if num_images % batch_size:
        sizes.append(num_images % batch_size)
    return [
        random_batch(generator, size, img_size, num_classes, channels)
        for size in sizes
    ]


def matching_batches(args, cfg, num_images, seed):
    """The matching dataloader (``--data config``, images loaded in this
    process) or random batches of its batch size."""
    from mmengine.runner import Runner
    hook = matching_hook(cfg)
    if args.data == 'random':
        return random_batches(num_images, hook.dataloader.batch_size,
                              args.img_size, cfg, seed)
    # Loading in the measured process: worker processes would add cores
    # that a one-thread rank does not have.
    hook.dataloader.num_workers = 0
    hook.dataloader.pop('persistent_workers', None)
    return Runner.build_dataloader(hook.dataloader.to_dict(), seed=seed)


def run_rank(rank, world_size, args, port, out_dir):
    """Part 1 on one rank: time its matching pass."""
    setup_imports()
    import torch.distributed as dist
    from mmrazor.registry import MODELS

    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group(
            'gloo',
            init_method=f'tcp://127.0.0.1:{port}',
            rank=rank,
            world_size=world_size)
    cfg = load_config(args.config)
    torch.manual_seed(0)
    algorithm = MODELS.build(cfg.model)
    share = math.ceil(args.num_samples / world_size)
    loader = matching_batches(args, cfg, share, seed=args.seed + rank)
    batch_size = matching_hook(cfg).dataloader.batch_size
    # Warm-up batch: allocator and thread pools, not counted.
    algorithm.matching_pass(loader, batch_size, show_progress=False)
    start = time.perf_counter()
    algorithm.matching_pass(loader, args.num_samples, show_progress=False)
    seconds = time.perf_counter() - start
    torch.save(
        dict(images=algorithm.distiller.matching_cost_count, seconds=seconds),
        osp.join(out_dir, f'w{world_size}_r{rank}.pth'))
    if world_size > 1:
        dist.destroy_process_group()


def per_rank(args):
    """Part 1: images and seconds per rank for each world size."""
    rows = []
    print(f'{"ranks":>5} {"images/rank":>12} {"reference images/rank":>22} '
          f'{"s/rank (max)":>13}')
    with tempfile.TemporaryDirectory() as out_dir:
        for world_size in args.world_sizes:
            if world_size == 1:
                run_rank(0, 1, args, None, out_dir)
            else:
                mp.spawn(
                    run_rank,
                    args=(world_size, args, get_free_port(), out_dir),
                    nprocs=world_size)
            results = [
                torch.load(osp.join(out_dir, f'w{world_size}_r{r}.pth'))
                for r in range(world_size)
            ]
            images = sorted({r['images'] for r in results})
            seconds = max(r['seconds'] for r in results)
            rows.append(
                dict(
                    world_size=world_size,
                    images_per_rank=images,
                    reference_images_per_rank=args.num_samples,
                    seconds_per_rank_max=seconds))
            print(f'{world_size:>5} {"/".join(map(str, images)):>12} '
                  f'{args.num_samples:>22} {seconds:>13.2f}')
    return rows


def preload(loader, num_images):
    """The first ``num_images`` images of ``loader`` as a list of batches."""
    batches, seen = [], 0
    for data in loader:
        if seen >= num_images:
            break
        take = min(len(data['inputs']), num_images - seen)
        batches.append({key: value[:take] for key, value in data.items()})
        seen += take
    if seen < num_images:
        raise ValueError(f'the matching dataloader has only {seen} images; '
                         f'--num-samples is {num_images}.')
    return batches


@torch.no_grad()
def plain_forward(batches, data_preprocessor, teacher, student):
    """What the pass does, without recorders, costs or solve."""
    for data in batches:
        inputs = data_preprocessor(data, False)['inputs']
        teacher(inputs, None, mode='tensor')
        student(inputs, None, mode='tensor')


def train_images(args, cfg):
    if args.train_images:
        return args.train_images, '--train-images'
    from mmpretrain.registry import DATASETS
    try:
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        return len(dataset), 'len(train_dataloader.dataset)'
    except Exception as error:  # the data is not on this machine
        raise SystemExit(
            f'Cannot build the training set of {args.config} to count its '
            f'images ({type(error).__name__}: {error}); give '
            '--train-images (ImageNet-1k: 1281167).') from None


def compare_and_share(args, epoch_images, counted_by):
    """Parts 2 and 3, in this process."""
    from benchmark_train_step import (build_models, input_spec,
                                      make_optim_wrapper, random_batch)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    hook = matching_hook(cfg)
    torch.manual_seed(args.seed)
    algo, floor = build_models(cfg)
    teacher, student = floor.teacher.eval(), floor.student.eval()
    batches = matching_batches(args, cfg, args.num_samples, args.seed)
    if args.data == 'config':
        batches = preload(batches, args.num_samples)

    def run_pass():
        algo.matching_pass(batches, args.num_samples, show_progress=False)

    def run_forward():
        plain_forward(batches, algo.data_preprocessor, teacher, student)

    run_pass()  # warm-up (first-call overheads), not counted
    run_forward()
    seconds = dict(matching_pass=[], plain_forward=[])
    for index in range(args.repeats):
        order = [('matching_pass', run_pass), ('plain_forward', run_forward)]
        for name, run in order[::1 if index % 2 == 0 else -1]:
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    ratio = statistics.median(
        p / f
        for p, f in zip(seconds['matching_pass'], seconds['plain_forward']))

    # An MGD training step on random images of the matching images' size.
    batch_size = args.train_batch_size or cfg.train_dataloader.batch_size
    channels, num_classes = input_spec(cfg)
    size = batches[0]['inputs'][0].shape[-1]
    generator = torch.Generator().manual_seed(args.seed)
    data = random_batch(generator, batch_size, size, num_classes, channels)
    optim_wrapper, _ = make_optim_wrapper(algo)
    algo.train()
    step_seconds = []
    for index in range(args.train_steps + 1):
        start = time.perf_counter()
        algo.train_step(data, optim_wrapper)
        if index:  # the first is a warm-up
            step_seconds.append(time.perf_counter() - start)

    c_pass = statistics.median(seconds['matching_pass']) / args.num_samples
    c_step = statistics.median(step_seconds) / batch_size
    pass_epoch = hook.num_samples * c_pass
    train_epoch = epoch_images * c_step
    return dict(
        threads=torch.get_num_threads(),
        images=args.num_samples,
        seconds=seconds,
        pass_to_forward_paired=ratio,
        train_step=dict(batch_size=batch_size, seconds=step_seconds),
        seconds_per_image=dict(matching_pass=c_pass, train_step=c_step),
        epoch=dict(
            formula='share = N_m * c_pass / (N_m * c_pass + N_t * c_step)',
            matching_images=hook.num_samples,
            matching_interval_epochs=hook.get('interval', 1),
            training_images=epoch_images,
            training_images_from=counted_by,
            matching_pass_s=pass_epoch,
            training_s=train_epoch,
            share=pass_epoch / (pass_epoch + train_epoch)))


def print_comparison(result):
    seconds = result['seconds']
    print(f'\nmatching pass against a plain eval forward of both networks, '
          f'{result["images"]} images in memory, {result["threads"]} '
          f'thread(s), {len(seconds["matching_pass"])} rounds')
    for name in ('matching_pass', 'plain_forward'):
        print(f'  {name.replace("_", " "):<14} median '
              f'{statistics.median(seconds[name]):.3f} s  (' +
              ', '.join(f'{s:.3f}' for s in seconds[name]) + ')')
    print(f'  pass / forward: {result["pass_to_forward_paired"]:.3f}x '
          '(median of the rounds\' ratios)')
    per_image, epoch = result['seconds_per_image'], result['epoch']
    print(f'\nshare of an epoch: {epoch["formula"]}')
    print(f'  c_pass = {per_image["matching_pass"] * 1e3:.3f} ms per '
          f'matching image; c_step = {per_image["train_step"] * 1e3:.3f} ms '
          f'per training image (MGD step, batch '
          f'{result["train_step"]["batch_size"]})')
    print(f'  N_m = {epoch["matching_images"]} matching images (every '
          f'{epoch["matching_interval_epochs"]} epoch(s)), N_t = '
          f'{epoch["training_images"]} training images '
          f'({epoch["training_images_from"]})')
    print(f'  on this machine: pass {epoch["matching_pass_s"]:.1f} s, '
          f'training {epoch["training_s"]:.1f} s per epoch; share '
          f'{100 * epoch["share"]:.2f}%')


def main(argv=None):
    args = parse_args(argv)
    setup_imports()
    import benchmark_record
    if not osp.exists(args.config):
        args.config = osp.join(REPO_ROOT, args.config)
    os.environ['OMP_NUM_THREADS'] = '1'
    command = benchmark_record.command_line(
        [__file__, *(sys.argv[1:] if argv is None else argv)])
    print(f'command: {command}')
    # Bad input first: no MGD hook, no training set to count.
    cfg = load_config(args.config)
    matching_hook(cfg)
    epoch_images = train_images(args, cfg)
    figures = dict(per_rank=per_rank(args) if args.world_sizes else [])
    figures['comparison'] = compare_and_share(args, *epoch_images)
    print_comparison(figures['comparison'])
    ratio = figures['comparison']['pass_to_forward_paired']
    passed = ratio <= TARGET_RATIO
    verdict = benchmark_record.make_verdict([
        (f'matching pass / plain forward = {ratio:.3f} '
         f'{"<=" if passed else ">"} {TARGET_RATIO}', passed)
    ])
    for check in verdict['checks']:
        print(f'{"PASS" if check["passed"] else "FAIL"}: {check["check"]}')
    record = benchmark_record.make_record(
        'matching_pass',
        figures,
        verdict,
        command=command,
        config=osp.relpath(args.config, REPO_ROOT),
        settings={
            k: v
            for k, v in vars(args).items() if k != 'out'
        })
    print('wrote', benchmark_record.write_record(record, args.out))
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
