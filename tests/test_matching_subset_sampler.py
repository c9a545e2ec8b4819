"""Which images a matching pass sees: a random subset of the whole dataset,
fresh for every matching, the same on every rank, disjoint between ranks."""
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

from mgd_plugin.datasets import MatchingSubsetSampler
from mgd_plugin.engine.hooks import MatchingUpdateHook

NUM_CLASSES, PER_CLASS = 100, 20


@pytest.fixture(scope='module')
def class_ordered_ann_file(tmp_path_factory):
    """An ImageNet-style annotation list, sorted by class."""
    path = tmp_path_factory.mktemp('ann') / 'train.txt'
    path.write_text(''.join(f'class_{c}/{i}.JPEG {c}\n'
                            for c in range(NUM_CLASSES)
                            for i in range(PER_CLASS)))
    return str(path)


def hook_loader(ann_file, num_samples, sampler, seed=0):
    init_default_scope('mmpretrain')
    dataloader = dict(
        batch_size=8,
        num_workers=0,
        dataset=dict(
            type='CustomDataset',
            data_root=osp.dirname(ann_file),
            ann_file=ann_file,
            pipeline=[]))
    if sampler is not None:
        dataloader['sampler'] = sampler
    hook = MatchingUpdateHook(dataloader=dataloader, num_samples=num_samples)
    return hook._build_dataloader(seed)


@pytest.mark.parametrize('sampler', [
    dict(type='DefaultSampler', shuffle=False),
    dict(type='DefaultSampler', shuffle=True),
    None,
])
def test_hook_draws_from_every_class_of_a_class_ordered_list(
        class_ordered_ann_file, sampler):
    loader = hook_loader(class_ordered_ann_file, 200, sampler)
    assert isinstance(loader.sampler, MatchingSubsetSampler)
    indices = list(loader.sampler)
    assert len(indices) == len(set(indices)) == 200
    classes = {loader.dataset.get_cat_ids(i)[0] for i in indices}
    # The first 200 images of the list would be 10 classes; 200 random
    # draws from 100 classes of 20 miss a class with probability ~1e-8.
    assert len(classes) >= 80


def test_fresh_subset_per_matching_epoch_reproducible_per_seed(
        class_ordered_ann_file):
    loader = hook_loader(class_ordered_ann_file, 100, None, seed=3)
    sampler = loader.sampler
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(2)
    second = list(sampler)
    assert set(first) != set(second)
    # A new run (or a resumed one) with the same seed draws the same.
    again = hook_loader(class_ordered_ann_file, 100, None, seed=3).sampler
    again.set_epoch(2)
    assert list(again) == second
    other_seed = hook_loader(class_ordered_ann_file, 100, None, seed=4).sampler
    other_seed.set_epoch(2)
    assert set(other_seed) != set(second)


@pytest.mark.parametrize('num_samples, size', [(10, 30), (11, 30), (50, 7)])
@pytest.mark.parametrize('world_size', [2, 3])
def test_rank_shares_are_disjoint_and_cover_the_subset(num_samples, size,
                                                       world_size):
    samplers = []
    for rank in range(world_size):
        sampler = MatchingSubsetSampler(range(size), num_samples, seed=7)
        # What get_dist_info() gives rank `rank` of a process group.
        sampler.rank, sampler.world_size = rank, world_size
        sampler.set_epoch(4)
        samplers.append(sampler)
    shares = [list(s) for s in samplers]
    assert [len(s) for s in samplers] == [len(share) for share in shares]
    union = [i for share in shares for i in share]
    assert len(union) == len(set(union)) == min(num_samples, size)
    assert sorted(union) == sorted(samplers[0].subset().tolist())
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_bad_num_samples():
    with pytest.raises(ValueError, match='positive int'):
        MatchingSubsetSampler(range(4), 0, seed=0)
    with pytest.raises(ValueError, match='positive int'):
        MatchingSubsetSampler(range(4), 2.5, seed=0)


def test_subset_is_uniform_over_the_dataset():
    # Every index is drawn about equally often over many matchings.
    sampler = MatchingSubsetSampler(range(50), 10, seed=1)
    counts = torch.zeros(50)
    for epoch in range(1, 501):
        sampler.set_epoch(epoch)
        counts[sampler.subset()] += 1
    # Expected 100 per index; binomial std ~9.
    assert counts.min() > 60 and counts.max() < 140
