"""MoCo across two processes (gloo on the CPU): with shuffled BN a
sample's key is computed in another rank's batch and comes back to its
own rank; without it every key is computed in its own rank's batch; the
queue takes the keys of both ranks."""
import os
import os.path as osp
import time

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.utils.distributed import get_free_port

from conftest import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'moco_mgd_tiny_resnet.py')
JOIN_TIMEOUT = 180
BATCH = 4
STEPS = 3


def key_run(rank, world_size, port, out_dir):
    import sys
    sys.path.insert(0, REPO_ROOT)
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import mgd_plugin  # noqa: F401

    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=world_size)
    result = {}
    for shuffle_bn in (True, False):
        cfg = Config.fromfile(CONFIG).model
        cfg.type = 'ConfigurableMoCo'
        for key in ('teacher_backbone', 'teacher_ckpt', 'distiller'):
            cfg.pop(key)
        cfg.update(shuffle_bn=shuffle_bn, queue_len=BATCH * world_size * 2)
        torch.manual_seed(0)  # the same weights on every rank
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(cfg)
        model.train()
        seen = []

        def record(module, args, output):
            # Which samples this rank's key encoder saw, and its output.
            seen.append((args[0][:, 0, 0, 0].round().long().clone(),
                         output[0].detach().clone()))

        model.encoder_k.register_forward_hook(record)
        steps = []
        for step in range(STEPS):
            generator = torch.Generator().manual_seed(100 * step + rank)
            im_k = torch.randn(BATCH, 3, 16, 16, generator=generator)
            # Sample ids, unique over ranks and steps, in a pixel.
            ids = torch.arange(BATCH) + rank * BATCH + step * 100
            im_k[:, 0, 0, 0] = ids.float()
            keys = model.momentum_keys(im_k)
            model._dequeue_and_enqueue(keys)
            encoded_ids, encoded = seen[-1]
            steps.append(
                dict(
                    ids=ids,
                    keys=keys,
                    encoded_ids=encoded_ids,
                    encoded=torch.nn.functional.normalize(encoded, dim=1),
                    queue=model.queue.clone(),
                    queue_ptr=int(model.queue_ptr)))
        result[shuffle_bn] = steps
    torch.save(result, osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('moco_ddp'))
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    context = mp.start_processes(
        key_run,
        args=(2, get_free_port(), out_dir),
        nprocs=2,
        join=False,
        start_method='spawn')
    deadline = time.monotonic() + JOIN_TIMEOUT
    while not context.join(timeout=max(deadline - time.monotonic(), 0)):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(
                f'the two ranks did not finish within {JOIN_TIMEOUT} s')
    return [
        torch.load(osp.join(out_dir, f'rank{r}.pth'), weights_only=True)
        for r in range(2)
    ]


def encoded_rows(ranks, shuffle_bn, step):
    """Sample id -> (rank that encoded it, its normalised key there)."""
    rows = {}
    for rank, result in enumerate(ranks):
        entry = result[shuffle_bn][step]
        for sample, row in zip(entry['encoded_ids'].tolist(),
                               entry['encoded']):
            rows[sample] = (rank, row)
    return rows


def test_shuffled_bn_computes_keys_in_another_ranks_batch(ranks):
    moved = 0
    for step in range(STEPS):
        rows = encoded_rows(ranks, True, step)
        for rank, result in enumerate(ranks):
            entry = result[True][step]
            for sample, key in zip(entry['ids'].tolist(), entry['keys']):
                encoded_on, row = rows[sample]
                moved += encoded_on != rank
                # Unshuffled: the key of sample i is back in row i.
                torch.testing.assert_close(key, row)
    # Each step sends about half the samples to the other rank; the chance
    # that none moved in all steps is (1/70)^3.
    assert moved > 0


def test_plain_bn_computes_keys_in_their_own_batch(ranks):
    for step in range(STEPS):
        for result in ranks:
            entry = result[False][step]
            assert torch.equal(entry['encoded_ids'], entry['ids'])
            torch.testing.assert_close(entry['keys'], entry['encoded'])


@pytest.mark.parametrize('shuffle_bn', [True, False])
def test_queue_takes_the_keys_of_both_ranks(ranks, shuffle_bn):
    rank0, rank1 = (r[shuffle_bn] for r in ranks)
    global_batch = 2 * BATCH
    for step in range(STEPS):
        queue = rank0[step]['queue']
        assert torch.equal(queue, rank1[step]['queue'])
        assert rank0[step]['queue_ptr'] == (step + 1) * global_batch % (
            queue.size(1))
        start = step * global_batch % queue.size(1)
        written = queue[:, start:start + global_batch].t()
        torch.testing.assert_close(
            written, torch.cat([rank0[step]['keys'], rank1[step]['keys']]))
