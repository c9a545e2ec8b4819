"""MGD hooks, registered in the mmrazor and mmpretrain ``HOOKS``."""
from .hooks import *  # noqa: F401,F403
