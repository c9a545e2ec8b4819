"""The matching pass under DDP (2 gloo processes on the CPU): each rank
processes its own half of the images, the cost sums are added over ranks,
and every rank installs the groups that one process would find on all the
images."""
import os
import os.path as osp

import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.utils.distributed import get_free_port

from conftest import REPO_ROOT, write_image_folder

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'mgd_tiny_resnet.py')
NUM_SAMPLES = 16


def matching_run(rank, world_size, data_root, port, out_dir):
    import sys
    sys.path.insert(0, REPO_ROOT)
    import mgd_plugin  # noqa: F401
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmrazor.registry import MODELS

    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group(
            'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
            world_size=world_size)
    init_default_scope('mmrazor')
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)  # the same weights on every rank
    algorithm = MODELS.build(cfg.model)
    loader_cfg = cfg.custom_hooks[0].dataloader.to_dict()
    loader_cfg['dataset']['data_root'] = data_root
    loader_cfg['batch_size'] = 3
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    algorithm.matching_pass(loader, NUM_SAMPLES, show_progress=False)
    torch.save(
        dict(
            seen=algorithm.distiller.matching_cost_count,
            costs=algorithm.distiller.matching_costs(),
            assignments={
                p.name: algorithm.distiller.reducer(p).assignment
                for p in algorithm.distiller.positions
            }), osp.join(out_dir, f'world{world_size}_rank{rank}.pth'))
    if world_size > 1:
        dist.destroy_process_group()


def test_ranks_share_the_images_and_install_identical_groups(tmp_path):
    data_root = write_image_folder(str(tmp_path / 'images'), per_class=8)
    out_dir = str(tmp_path)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    mp.spawn(matching_run, args=(2, data_root, get_free_port(), out_dir),
             nprocs=2, join=True)
    matching_run(0, 1, data_root, None, out_dir)

    rank0, rank1, single = (
        torch.load(osp.join(out_dir, name), weights_only=True)
        for name in ('world2_rank0.pth', 'world2_rank1.pth',
                     'world1_rank0.pth'))
    # Each rank processed half of the images; one process did all of them.
    assert rank0['seen'] == rank1['seen'] == NUM_SAMPLES // 2
    assert single['seen'] == NUM_SAMPLES
    for name, cost in single['costs'].items():
        # After the all-reduce every rank holds the sum over both halves,
        # which are together the images the single process saw.
        # Batches are grouped differently, and each batch's similarities
        # are float32 before the float64 sum: float32 rounding apart.
        torch.testing.assert_close(rank0['costs'][name], cost, rtol=1e-5,
                                   atol=1e-5)
        torch.testing.assert_close(rank1['costs'][name], cost, rtol=1e-5,
                                   atol=1e-5)
        assert torch.equal(rank0['assignments'][name],
                           rank1['assignments'][name])
        assert torch.equal(rank0['assignments'][name],
                           single['assignments'][name])
