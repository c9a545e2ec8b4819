"""MGD models, registered in ``mmrazor.registry.MODELS`` on import, and the
MobileNet-V1 backbone, registered in ``mmpretrain.registry.MODELS``."""
from .algorithms import *  # noqa: F401,F403
from .architectures import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
