from .dist_utils import fail_together, raise_if_any_rank_failed
from .preflight import ConfigCheckError, check_config

__all__ = [
    'ConfigCheckError', 'check_config', 'fail_together',
    'raise_if_any_rank_failed'
]
