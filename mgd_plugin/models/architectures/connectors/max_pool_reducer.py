"""Simple pooling (SP): plain max over each matched group."""
import torch
from mmrazor.registry import MODELS

from .base_reducer import BaseChannelReducer


@MODELS.register_module()
class MaxPoolReducer(BaseChannelReducer):
    """Max pooling over each matched group of teacher channels.

    At every position ``(n, h, w)``, student channel ``i`` gets
    ``max_{j in G_i} t[n, j, h, w]``; its margin is the largest margin in
    ``G_i``. Padding repeats a group member, so it changes neither max.

    Args:
        student_channels (int): ``S``.
        teacher_channels (int): ``T``, ``T >= S``.
        init_cfg (dict, optional): The config to control the initialization.
            Defaults to None.
    """

    def reduce_feature(self, feature: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) -> (N, S, H, W)."""
        # Reduced over dim 1 of (N, G, S, H, W): a vectorised reduction.
        return self.gather_columns(feature).amax(dim=1)

    def reduce_margin(self) -> torch.Tensor:
        """(T,) -> (S,): max over each group."""
        return self.group_margins().amax(dim=1)
