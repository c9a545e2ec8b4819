"""Matching Guided Distillation (MGD, ECCV 2020) for MMRazor and MMPretrain.

Importing the package first applies :mod:`mgd_plugin.compat` (so that MMRazor
and MMEngine work on current PyTorch), then registers the plugin's models and
hooks in the ``mmrazor`` and ``mmpretrain`` registries.
"""
from . import compat

compat.apply()

from .version import __version__  # noqa: E402

__all__ = ['__version__', 'compat']
