"""The MGD distillation loss: partial L2 against a margin-clamped target."""
import torch
from mmrazor.registry import MODELS
from torch import nn
from torch.autograd.function import once_differentiable


class _PartialSquaredError(torch.autograd.Function):
    """``sum((s - t)^2 * [(s > t) or (t > 0)])`` in one fused step.

    Forward keeps only the counted difference ``e`` (zero where not counted)
    and backward is a single ``2 * e * grad``, instead of the half dozen
    full-size tensors (masks, ``where`` and its backward, ``pow`` and its
    backward) that autograd would create. Only elementwise operations that
    are vectorised on CPU are used; ``torch.where`` and boolean masks are
    avoided (slow on CPU). ``t`` gets no gradient. A NaN in ``s`` or ``t``
    gives a NaN sum.
    """

    @staticmethod
    def forward(ctx, student: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
        diff = torch.sub(student, target)
        # s - t has the sign of the comparison s > t, exactly (IEEE). Kept
        # finite so that the 0 * (s - t) below is 0: an infinite difference
        # still squares to inf.
        finfo = torch.finfo(diff.dtype)
        diff.clamp_(min=finfo.min, max=finfo.max)
        # Where t <= 0 only s > t counts: e = max(s - t, 0); where t > 0
        # everything counts: e = s - t = max(s - t, min(s - t, 0)). So
        # e = max(s - t, min([t > 0] * (s - t), 0)), with [t > 0] written
        # as 0 / 1 floats (faster than a bool mask; NaN still propagates).
        below = torch.gt(target, 0, out=torch.empty_like(diff))
        below.mul_(diff).clamp_(max=0)
        counted = torch.maximum(diff, below, out=diff)
        flat = counted.reshape(-1)
        with torch.autocast(device_type=flat.device.type, enabled=False):
            total = torch.dot(flat, flat)
        ctx.save_for_backward(counted)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total: torch.Tensor):
        counted, = ctx.saved_tensors
        return counted * (2 * grad_total), None


@MODELS.register_module()
class MatchingGuidedLoss(nn.Module):
    """Partial L2 loss of Matching Guided Distillation at one position.

    ``L = loss_weight * sum((s - t)^2 * [(s > t) or (t > 0)]) / N``.
    Positions where ``s <= t <= 0`` are skipped: both the student and the
    target are zero after the ReLU, so the student need not move there ("A
    Comprehensive Overhaul of Feature Distillation").

    ``loss_weight`` carries both the stage weight of this position and the
    ``1 / loss_factor`` of the reference, which the config folds in: with K
    positions, position ``k`` (0 = shallowest) has stage weight
    ``1 / 2^(K - k - 1)``, e.g. 1/8, 1/4, 1/2, 1 for 4 positions, divided by
    ``loss_factor`` (1e4 for 224-px inputs), giving 1.25e-5, 2.5e-5, 5e-5,
    1e-4.

    The squares are summed in at least float32 so that a float16 feature
    under autocast does not overflow the sum. A NaN in either feature makes
    the loss NaN.

    Args:
        loss_weight (float): see above. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            s_feature (torch.Tensor): the student feature after the
                distiller's trainable BatchNorm, shape (N, S, H, W).
            t_feature (torch.Tensor): the reducer's target, shape
                (N, S, H, W); treated as a constant (detached).

        Returns:
            torch.Tensor: scalar loss, float32 (float64 for float64 inputs).
        """
        if s_feature.shape != t_feature.shape:
            raise ValueError(
                f'MatchingGuidedLoss needs student and target features of '
                f'the same shape, got {tuple(s_feature.shape)} and '
                f'{tuple(t_feature.shape)}.')
        dtype = torch.promote_types(
            torch.promote_types(s_feature.dtype, t_feature.dtype),
            torch.float32)
        student = s_feature.to(dtype)
        target = t_feature.detach().to(dtype)
        total = _PartialSquaredError.apply(student, target)
        return self.loss_weight * total / s_feature.size(0)
