from .configurable_moco import ConfigurableMoCo, check_queue_length
from .moco_mgd import MoCoMGD

__all__ = ['ConfigurableMoCo', 'MoCoMGD', 'check_queue_length']
