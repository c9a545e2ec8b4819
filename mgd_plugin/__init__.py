"""Matching Guided Distillation (MGD, ECCV 2020) for MMRazor and MMPretrain.

Importing the package first applies :mod:`mgd_plugin.compat` (so that MMRazor
and MMEngine work on current PyTorch), then registers the plugin's models in
the ``mmrazor`` registry, its hooks in the ``mmrazor`` and ``mmpretrain``
registries, its matching sampler in MMEngine's ``DATA_SAMPLERS`` and its
dataset wrapper in the ``mmpretrain`` registry.
"""
from . import compat

compat.apply()

from . import datasets, engine, models  # noqa: E402,F401
from .matching import match_channels  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'compat', 'match_channels']
