from .epoch_seed_hook import EpochSeedHook, epoch_seed
from .matching_update_hook import MatchingUpdateHook, log_schedule

__all__ = ['EpochSeedHook', 'MatchingUpdateHook', 'epoch_seed', 'log_schedule']
