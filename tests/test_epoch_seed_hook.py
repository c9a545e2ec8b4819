"""EpochSeedHook: the global generators reseeded from (seed, epoch)."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mgd_plugin.engine.hooks import (EpochSeedHook, MatchingUpdateHook,
                                     epoch_seed, epoch_seed_hook)


def fake_runner(seed=3, epoch=0, hooks=(), **randomness):
    """What the hooks read from MMEngine's Runner; ``epoch`` is 0-based."""
    return SimpleNamespace(
        seed=seed,
        epoch=epoch,
        hooks=list(hooks),
        _randomness_cfg=dict(seed=seed, **randomness))


def draws():
    return (random.random(), float(np.random.rand()), torch.rand(3).tolist())


def test_epoch_seed_mixes_its_inputs():
    seeds = {epoch_seed(s, e) for s in range(4) for e in range(1, 5)}
    assert len(seeds) == 16  # (0, 2) and (1, 1) differ, unlike seed + epoch
    assert epoch_seed(5, 2) == epoch_seed(5, 2)
    assert len({epoch_seed(5, 2, r) for r in range(4)}) == 4
    assert all(0 <= s < 2**63 for s in seeds)


def test_an_epoch_draws_the_same_whatever_came_before():
    hook = EpochSeedHook()
    hook.before_train_epoch(fake_runner(epoch=1))
    first = draws()
    torch.rand(100)  # a different history: another epoch, a matching pass
    np.random.rand(7)
    random.random()
    hook.before_train_epoch(fake_runner(epoch=1))
    assert draws() == first
    hook.before_train_epoch(fake_runner(epoch=2))
    assert draws() != first
    hook.before_train_epoch(fake_runner(seed=4, epoch=1))
    assert draws() != first


@pytest.mark.parametrize('diff_rank_seed', [False, True])
def test_ranks_share_the_seed_unless_diff_rank_seed(monkeypatch,
                                                    diff_rank_seed):
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(epoch_seed_hook, 'get_rank', lambda: rank)
        EpochSeedHook().before_train_epoch(
            fake_runner(epoch=1, diff_rank_seed=diff_rank_seed))
        per_rank.append(draws())
    assert (per_rank[0] != per_rank[1]) == diff_rank_seed


def test_matching_hook_reseeds_unless_the_config_has_the_hook():
    matching = MatchingUpdateHook(dataloader=dict(), num_samples=4)
    matching.before_train_epoch(fake_runner(epoch=1))
    reseeded = draws()
    EpochSeedHook().before_train_epoch(fake_runner(epoch=1))
    assert draws() == reseeded

    # With an EpochSeedHook registered, that one is in charge (its own
    # priority); the matching hook leaves the generators alone.
    torch.manual_seed(123)
    expected = torch.rand(3).tolist()
    torch.manual_seed(123)
    matching.before_train_epoch(
        fake_runner(epoch=1, hooks=[matching, EpochSeedHook()]))
    assert torch.rand(3).tolist() == expected
