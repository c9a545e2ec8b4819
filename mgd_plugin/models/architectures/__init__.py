from .connectors import (AbsMaxPoolReducer, BaseChannelReducer, MaxPoolReducer,
                         RandomDropReducer, SparseMatchReducer)

__all__ = [
    'BaseChannelReducer', 'AbsMaxPoolReducer', 'RandomDropReducer',
    'MaxPoolReducer', 'SparseMatchReducer'
]
