"""The matching pass under DDP (2 gloo processes on the CPU): each rank
processes its own share of the drawn images, the cost sums are added over
ranks, every rank installs the groups that one process would find on the
same images, and a failure on one rank stops every rank with the same
error instead of a hang."""
import os
import os.path as osp
import time

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.utils.distributed import get_free_port

from conftest import REPO_ROOT, write_image_folder

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'mgd_tiny_resnet.py')
# Each spawned run must finish well within this; a hang fails the test.
JOIN_TIMEOUT = 180


def matching_run(rank,
                 world_size,
                 data_root,
                 port,
                 out_dir,
                 num_samples,
                 fault=None):
    import sys
    sys.path.insert(0, REPO_ROOT)
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmrazor.registry import MODELS

    import mgd_plugin  # noqa: F401
    from mgd_plugin.engine.hooks import MatchingUpdateHook
    from mgd_plugin.models.algorithms import channel_matching_mixin

    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group(
            'gloo',
            init_method=f'tcp://127.0.0.1:{port}',
            rank=rank,
            world_size=world_size)
    init_default_scope('mmrazor')
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)  # the same weights on every rank
    algorithm = MODELS.build(cfg.model)
    hook_cfg = cfg.custom_hooks[0].to_dict()
    hook_cfg['dataloader']['dataset']['data_root'] = data_root
    hook_cfg['dataloader']['batch_size'] = 3
    hook = MatchingUpdateHook(
        dataloader=hook_cfg['dataloader'], num_samples=num_samples)
    loader = hook._build_dataloader(seed=0)
    loader.sampler.set_epoch(1)
    if fault == 'solver' and rank == 0:

        def broken_solver(*args, **kwargs):
            raise ValueError('planted solver failure')

        channel_matching_mixin.match_channels = broken_solver
    if fault == 'features' and rank == world_size - 1:
        # The last rank records the wrong teacher tensor: the bottleneck's
        # first ReLU input, a quarter of the channels.
        algorithm.distiller.positions[1].teacher_record_idx = 0
    result = dict(indices=list(loader.sampler))
    try:
        algorithm.matching_pass(loader, show_progress=False, epoch=1)
    except Exception as error:
        result['error'] = (type(error).__name__, str(error))
    else:
        result.update(
            seen=algorithm.distiller.matching_cost_count,
            costs=algorithm.distiller.matching_costs(),
            assignments={
                p.name: algorithm.distiller.reducer(p).assignment
                for p in algorithm.distiller.positions
            })
    torch.save(result, osp.join(out_dir, f'world{world_size}_rank{rank}.pth'))
    if world_size > 1:
        dist.destroy_process_group()


def spawn_two(data_root, out_dir, num_samples, fault=None):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    context = mp.start_processes(
        matching_run,
        args=(2, data_root, get_free_port(), out_dir, num_samples, fault),
        nprocs=2,
        join=False,
        start_method='spawn')
    # join() returns False as soon as one process ends; loop until both
    # have, or the deadline passes.
    deadline = time.monotonic() + JOIN_TIMEOUT
    while not context.join(timeout=max(deadline - time.monotonic(), 0)):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(
                f'the two ranks did not finish within {JOIN_TIMEOUT} s')
    return [
        torch.load(
            osp.join(out_dir, f'world2_rank{r}.pth'), weights_only=True)
        for r in range(2)
    ]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_image_folder(
        str(tmp_path_factory.mktemp('images')), per_class=8)


# 15 of 24 images: 8 and 7 per rank; 40 > 24: the whole dataset.
@pytest.mark.parametrize('num_samples', [15, 40])
def test_ranks_share_the_images_and_match_one_process(tmp_path, data_root,
                                                      num_samples):
    rank0, rank1 = spawn_two(data_root, str(tmp_path), num_samples)
    matching_run(0, 1, data_root, None, str(tmp_path), num_samples)
    single = torch.load(
        osp.join(str(tmp_path), 'world1_rank0.pth'), weights_only=True)

    drawn = min(num_samples, 24)
    # Disjoint shares whose union is what the single process saw.
    assert not set(rank0['indices']) & set(rank1['indices'])
    assert sorted(rank0['indices'] + rank1['indices']) == sorted(
        single['indices'])
    assert rank0['seen'] + rank1['seen'] == single['seen'] == drawn
    assert rank0['seen'] == len(rank0['indices'])
    for name, cost in single['costs'].items():
        # After the all-reduce every rank holds the sum over both shares.
        # Batches are grouped differently, and each batch's similarities
        # are float32 before the float64 sum: float32 rounding apart.
        torch.testing.assert_close(
            rank0['costs'][name], cost, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            rank1['costs'][name], cost, rtol=1e-5, atol=1e-5)
        # Solved once on rank 0 and broadcast; the same as one process.
        assert torch.equal(rank0['assignments'][name],
                           rank1['assignments'][name])
        assert torch.equal(rank0['assignments'][name],
                           single['assignments'][name])


@pytest.mark.parametrize('fault, error', [
    ('solver', ('ValueError', 'planted solver failure')),
    ('features', ('ValueError', "position 'mgd1_reducer': the reducer "
                  'expects 8 student and 32 teacher channels, the '
                  'recorders give 8 and 8')),
])
def test_a_failure_on_one_rank_stops_every_rank_with_its_message(
        tmp_path, data_root, fault, error):
    rank0, rank1 = spawn_two(data_root, str(tmp_path), 16, fault=fault)
    for result in (rank0, rank1):
        assert result['error'][0] == error[0]
        assert error[1] in result['error'][1]
    assert rank0['error'] == rank1['error']
