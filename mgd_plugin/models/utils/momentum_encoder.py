"""MoCo's momentum (key) encoder for any momentum m in [0, 1]."""
from typing import Optional

import torch
from mmengine.model import BaseAveragedModel, ExponentialMovingAverage
from torch import nn


def check_encoder_momentum(value, key: str = 'encoder_momentum') -> float:
    """``value`` as a float if it is a momentum m in [0, 1], else a
    ValueError naming ``key``."""
    try:
        momentum = float(value)
    except (TypeError, ValueError):
        momentum = None
    if isinstance(value,
                  bool) or momentum is None or not (0.0 <= momentum <= 1.0):
        raise ValueError(
            f'{key} must be a number in [0, 1] (MoCo\'s m: 0.999 is the '
            f'recipe, 0 copies the query encoder every step), got {value!r}.')
    return momentum


class MomentumEncoder(ExponentialMovingAverage):
    """MMEngine's :class:`ExponentialMovingAverage` of the query encoder,
    parametrised by MoCo's momentum ``m``.

    Each update sets ``key = m * key + (1 - m) * query`` for every
    parameter (MMEngine's ``momentum`` is ``1 - m``); buffers (BatchNorm
    statistics) are copied from the query encoder, as in MMPretrain's MoCo.
    The first update copies the query encoder.

    MMEngine's class accepts only ``0 < 1 - m < 1``; MoCo's ablations also
    use ``m = 0`` (the key encoder is the query encoder of that step) and
    the limit ``m = 1`` (the key encoder keeps its first copy).

    Args:
        model (nn.Module): the query encoder (backbone and neck).
        encoder_momentum (float): MoCo's m, in [0, 1].
        device (torch.device, optional): where the copy lives.
    """

    def __init__(self,
                 model: nn.Module,
                 encoder_momentum: float,
                 device: Optional[torch.device] = None) -> None:
        encoder_momentum = check_encoder_momentum(encoder_momentum)
        # Skips ExponentialMovingAverage.__init__, whose range check refuses
        # m = 0 and m = 1 and which warns for m < 0.5.
        BaseAveragedModel.__init__(
            self, model, interval=1, device=device, update_buffers=False)
        self.encoder_momentum = encoder_momentum
        self.momentum = 1.0 - encoder_momentum
