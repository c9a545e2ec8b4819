"""What one MGD matching pass costs each rank, with 1 and with R processes.

The reference makes every rank run the pass over all ``num_samples`` images
(a one-replica sampler) so that all ranks hold the same costs. Here each
rank runs its share of a rank-partitioned dataloader and the costs are
summed. This script runs the pass of a config's model (random weights) on
its matching data with world sizes 1 and R (gloo processes on the CPU, one
thread each), and prints the images and seconds per rank:

    python tools/analysis_tools/benchmark_matching_pass.py \
        configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py \
        --num-samples 2048 --world-sizes 1 2
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.utils.distributed import get_free_port

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def run_rank(rank, world_size, args, port, out_dir):
    sys.path.insert(0, REPO_ROOT)
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmrazor.registry import MODELS

    import mgd_plugin  # noqa: F401

    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group(
            'gloo',
            init_method=f'tcp://127.0.0.1:{port}',
            rank=rank,
            world_size=world_size)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmrazor'))
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    algorithm = MODELS.build(cfg.model)
    hook = [h for h in cfg.custom_hooks if h.type == 'MatchingUpdateHook'][0]
    # Loading in the measured process: worker processes would add cores
    # that a one-thread rank does not have.
    hook.dataloader.num_workers = 0
    hook.dataloader.pop('persistent_workers', None)
    loader = Runner.build_dataloader(hook.dataloader.to_dict(), seed=0)
    # Warm-up batch: allocator and thread pools, not counted.
    algorithm.matching_pass(
        loader, hook.dataloader.batch_size, show_progress=False)
    start = time.perf_counter()
    algorithm.matching_pass(loader, args.num_samples, show_progress=False)
    seconds = time.perf_counter() - start
    torch.save(
        dict(images=algorithm.distiller.matching_cost_count, seconds=seconds),
        osp.join(out_dir, f'w{world_size}_r{rank}.pth'))
    if world_size > 1:
        dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--num-samples', type=int, default=2048)
    parser.add_argument('--world-sizes', type=int, nargs='+', default=[1, 2])
    args = parser.parse_args()
    os.environ['OMP_NUM_THREADS'] = '1'

    print(f'command: python {" ".join(sys.argv)}')
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
            print(f'{world_size:>5} {"/".join(map(str, images)):>12} '
                  f'{args.num_samples:>22} '
                  f'{max(r["seconds"] for r in results):>13.2f}')


if __name__ == '__main__':
    main()
