"""Random draws that depend on the epoch, not on the run's history."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmrazor.registry import HOOKS

from ...utils.seeding import epoch_seed


@HOOKS.register_module()
@MMPRETRAIN_HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed the global generators before every training epoch.

    MMEngine seeds Python's, NumPy's and torch's global generators once,
    when the runner is built, and does not save their state in a
    checkpoint. A resumed run therefore draws other numbers in its first
    epochs than the run it continues would have drawn: the random drop
    reducer's members and margins, dropout, MMPretrain's batch
    augmentations (Mixup, CutMix), the base seed of each dataloader
    iterator. This hook seeds all three before epoch ``e`` trains with
    :func:`epoch_seed` of ``(runner.seed, e)``, and of the rank too when
    ``randomness.diff_rank_seed`` is set, so that what an epoch draws in the
    training processes does not depend on whether the run was resumed.

    ``MatchingUpdateHook`` reseeds this way too when the config has no
    ``EpochSeedHook``: every MGD run resumes exactly.

    Not covered: dataloader workers. MMEngine seeds each worker from
    ``(seed, rank, worker id)`` when it starts, which is the same on resume
    for workers restarted every epoch; persistent workers
    (``persistent_workers=True``) carry their generators from epoch to
    epoch, and after a resume their random transforms differ. Nor is an
    iteration-based loop, which calls ``before_train_epoch`` only once.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        seed_epoch(runner)


def seed_epoch(runner) -> int:
    """Seed the global generators for the epoch ``runner`` is about to
    train; returns the seed."""
    randomness = getattr(runner, '_randomness_cfg', None) or {}
    rank = get_rank() if randomness.get('diff_rank_seed', False) else None
    seed = epoch_seed(runner.seed, runner.epoch + 1, rank)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # every device's default generator
    return seed
