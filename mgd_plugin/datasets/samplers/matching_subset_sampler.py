"""Which images a matching pass sees."""
import numbers
from typing import Iterator, Optional, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ...utils.seeding import epoch_seed


@DATA_SAMPLERS.register_module()
class MatchingSubsetSampler(Sampler):
    """A fresh random subset of the whole dataset for every matching pass.

    The subset is ``num_samples`` indices drawn uniformly without
    replacement from the entire dataset (all of it when it is smaller),
    from a generator seeded by ``(seed, epoch)``: every rank draws the same
    subset, and :meth:`set_epoch` gives each matching its own. Rank ``r`` of
    ``R`` iterates the disjoint share ``subset[r::R]``, so the ranks
    together see every drawn image exactly once, without padding.

    This matters for class-ordered datasets such as MMPretrain's ImageNet:
    the first ``num_samples`` images of such a list cover only a few
    classes. ``MatchingUpdateHook`` always uses this sampler, whatever the
    matching dataloader config names.

    Args:
        dataset (Sized): the matching dataset.
        num_samples (int): images per matching pass, over all ranks.
        seed (int, optional): the base seed, the same on every rank; None
            draws one and synchronises it between ranks.
    """

    def __init__(self,
                 dataset: Sized,
                 num_samples: int,
                 seed: Optional[int] = None) -> None:
        if (not isinstance(num_samples, numbers.Integral)
                or isinstance(num_samples, bool) or num_samples <= 0):
            raise ValueError('MatchingSubsetSampler.num_samples must be a '
                             f'positive int, got {num_samples!r}')
        self.dataset = dataset
        self.num_samples = int(num_samples)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.rank, self.world_size = get_dist_info()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the subset of the matching made for 1-based ``epoch``."""
        self.epoch = int(epoch)

    def subset(self) -> torch.Tensor:
        """The indices drawn over all ranks, int64, shape
        ``(min(num_samples, len(dataset)),)``."""
        generator = torch.Generator().manual_seed(
            epoch_seed(self.seed, self.epoch))
        total = len(self.dataset)
        return torch.randperm(total, generator=generator)[:self.num_samples]

    def __iter__(self) -> Iterator[int]:
        return iter(self.subset()[self.rank::self.world_size].tolist())

    def __len__(self) -> int:
        drawn = min(self.num_samples, len(self.dataset))
        return len(range(self.rank, drawn, self.world_size))
