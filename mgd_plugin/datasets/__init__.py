"""Dataset wrappers, registered in ``mmpretrain.registry.DATASETS``."""
from .class_balanced_subset import ClassBalancedSubset

__all__ = ['ClassBalancedSubset']
