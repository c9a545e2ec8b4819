"""Seeds derived from a run's seed, reproducible across resumes."""
from typing import Optional

import numpy as np


def epoch_seed(seed: int, epoch: int, rank: Optional[int] = None) -> int:
    """The seed of 1-based ``epoch`` of a run seeded with ``seed``.

    ``(seed, epoch[, rank])`` go through NumPy's ``SeedSequence``, which
    mixes them: neighbouring pairs give unrelated streams (``seed + epoch``
    would make epoch 2 of seed 0 repeat epoch 1 of seed 1).

    Returns:
        int: in ``[0, 2**63)``.
    """
    entropy = [int(seed), int(epoch)] + ([] if rank is None else [int(rank)])
    state = np.random.SeedSequence(entropy).generate_state(1, np.uint64)
    return int(state[0] >> 1)
