from .matching_update_hook import MatchingUpdateHook, log_schedule

__all__ = ['MatchingUpdateHook', 'log_schedule']
