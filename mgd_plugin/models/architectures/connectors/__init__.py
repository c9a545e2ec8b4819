from .abs_max_pool_reducer import AbsMaxPoolReducer
from .base_reducer import BaseChannelReducer
from .max_pool_reducer import MaxPoolReducer
from .random_drop_reducer import RandomDropReducer
from .sparse_match_reducer import SparseMatchReducer

__all__ = [
    'BaseChannelReducer', 'AbsMaxPoolReducer', 'RandomDropReducer',
    'MaxPoolReducer', 'SparseMatchReducer'
]
