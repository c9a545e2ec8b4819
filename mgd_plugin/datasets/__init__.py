"""Dataset wrappers (registered in ``mmpretrain.registry.DATASETS``) and
the matching pass's sampler (in MMEngine's ``DATA_SAMPLERS``)."""
from .class_balanced_subset import ClassBalancedSubset
from .samplers import *  # noqa: F401,F403

__all__ = ['ClassBalancedSubset']
