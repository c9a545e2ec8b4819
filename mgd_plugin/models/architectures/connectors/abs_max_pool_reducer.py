"""Absolute max pooling (AMP), the default MGD reducer."""
import torch
from mmrazor.registry import MODELS

from .base_reducer import BaseChannelReducer


@MODELS.register_module()
class AbsMaxPoolReducer(BaseChannelReducer):
    """Absolute max pooling over each matched group of teacher channels.

    At every position ``(n, h, w)``, student channel ``i`` gets the teacher
    value of largest magnitude in its group ``G_i``, with its sign:
    ``t[n, j*, h, w]`` where ``j* = argmax_{j in G_i} |t[n, j, h, w]|``. Only
    an exact tie between ``+v`` and ``-v`` makes the value ambiguous; ``+v``
    is taken then. The margin of student channel ``i`` is the mean of
    the margins of the true members of ``G_i``.

    Args:
        student_channels (int): ``S``.
        teacher_channels (int): ``T``, ``T >= S``.
        init_cfg (dict, optional): The config to control the initialization.
            Defaults to None.
    """

    def reduce_feature(self, feature: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) -> (N, S, H, W).

        The member of largest magnitude is the group's max or its min:
        ``max`` if ``max + min >= 0`` (IEEE gives this sum the exact sign
        of ``max - (-min)``), else ``min``; its value is
        ``copysign(max(max, -min), max + min)``. This is one gather, two
        vectorised reductions and four elementwise passes, without the
        strided ``argmax`` (very slow on CPU) and the ``gather`` that an
        ``abs().argmax()`` formulation needs. NaN propagates.
        """
        members = self.gather_columns(feature)  # (N, G, S, H, W)
        if members.size(1) == 1:
            return members.squeeze(1)
        largest = members.amax(dim=1)
        negated = members.amin(dim=1).neg_()
        magnitude = torch.maximum(largest, negated)
        return magnitude.copysign_(largest.sub_(negated))

    def reduce_margin(self) -> torch.Tensor:
        """(T,) -> (S,): mean over the true members of each group."""
        margins = self.group_margins()  # (S, G)
        columns = torch.arange(margins.size(1), device=margins.device)
        is_member = columns.unsqueeze(0) < self.group_size.unsqueeze(1)
        # where, not a multiplication by the mask: the default margin is
        # -inf, and -inf * 0 would be NaN.
        total = torch.where(is_member, margins, margins.new_zeros(
            ())).sum(dim=1)
        return total / self.group_size.to(margins.dtype)
