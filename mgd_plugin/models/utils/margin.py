"""Per-channel margins of a teacher feature from its BatchNorm."""
import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# Below this probability of a negative response, the conditional mean of
# the negative part is numerically unreliable and -3 std is used instead.
_MIN_NEGATIVE_PROBABILITY = 1e-3


@torch.no_grad()
def bn_margin(bn: nn.Module) -> torch.Tensor:
    """Margin of every channel of the pre-ReLU feature after ``bn``.

    The BN output of channel ``c`` is modelled as ``N(beta, s^2)`` with
    ``beta = bn.bias[c]`` and ``s = |bn.weight[c]|``; its margin is the mean
    of the negative part ("A Comprehensive Overhaul of Feature
    Distillation"): with ``phi``/``Phi`` the standard normal pdf/cdf,
    ``m = beta - s * phi(beta / s) / Phi(-beta / s)`` when
    ``Phi(-beta / s) > 0.001``, else ``m = -3 s``.

    A channel with ``s == 0`` outputs the constant ``beta``: its margin is
    ``beta`` when ``beta < 0`` and ``0`` (``-3 s``) otherwise, the limits of
    the formula, computed without NaN.

    Args:
        bn (nn.Module): an affine BatchNorm (any ``_BatchNorm``), C channels.

    Returns:
        torch.Tensor: float32, shape (C,), on ``bn``'s device, no grad.
    """
    if not isinstance(bn, _BatchNorm):
        raise TypeError(
            f'bn_margin needs a BatchNorm layer (torch.nn.modules.batchnorm.'
            f'_BatchNorm), got {type(bn).__name__}.')
    if bn.weight is None or bn.bias is None:
        raise ValueError(
            'bn_margin needs an affine BatchNorm (affine=True): the margin is '
            'computed from its weight and bias.')
    beta = bn.bias.detach().float()
    std = bn.weight.detach().float().abs()
    has_std = std > 0
    # z = -beta / s; at s == 0 take its limit, so that the negative-part
    # probability is 1 for beta < 0 and 0 for beta >= 0.
    z = torch.where(has_std, -beta / torch.where(has_std, std, 1.0),
                    torch.where(beta < 0, math.inf, -math.inf))
    negative_probability = torch.special.ndtr(z)
    # phi is even, so phi(beta / s) = phi(z).
    density = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    reliable = negative_probability > _MIN_NEGATIVE_PROBABILITY
    negative_mean = beta - std * density / negative_probability.clamp_min(
        _MIN_NEGATIVE_PROBABILITY)
    return torch.where(reliable, negative_mean, -3 * std)
