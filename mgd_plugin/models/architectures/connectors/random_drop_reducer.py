"""Random drop (RD): a random member of each matched group."""
import torch
from mmrazor.registry import MODELS

from .base_reducer import BaseChannelReducer


@MODELS.register_module()
class RandomDropReducer(BaseChannelReducer):
    """Keep one randomly drawn member of each matched group.

    At every position ``(n, i, h, w)`` a member of ``G_i`` is drawn uniformly
    and independently; the margin of student channel ``i`` is the margin of
    one member of ``G_i``, drawn independently of the feature draw. Both are
    redrawn at every forward from torch's global generator of the feature's
    device (feature draw first, then the margin draw), so
    ``torch.manual_seed`` makes them reproducible.

    Args:
        student_channels (int): ``S``.
        teacher_channels (int): ``T``, ``T >= S``.
        init_cfg (dict, optional): The config to control the initialization.
            Defaults to None.
    """

    def draw_columns(self, uniform: torch.Tensor) -> torch.Tensor:
        """Turn uniform draws into group columns of true members.

        Args:
            uniform (torch.Tensor): values in [0, 1), shape (S,) or
                (N, S, H, W).

        Returns:
            torch.Tensor: int64, same shape as ``uniform``: for every draw, a
            column ``k < group_size[i]`` of the group of its student channel
            ``i``, i.e. teacher channel ``group_index[i, k]``.
        """
        shape = [1] * uniform.dim()
        shape[0 if uniform.dim() == 1 else 1] = self.student_channels
        size = self.group_size.view(shape)
        # u * size may round up to size in float32 when u is just below 1.
        return torch.minimum((uniform * size).long(), size - 1)

    def reduce_feature(self, feature: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) -> (N, S, H, W)."""
        num, _, height, width = feature.shape
        uniform = torch.rand(
            num, self.student_channels, height, width, device=feature.device)
        # Picked from the (N, G, S, H, W) members by column: no
        # (N, S, H, W) lookup of teacher channels in group_index.
        column = self.draw_columns(uniform).unsqueeze(1)
        return self.gather_columns(feature).gather(1, column).squeeze(1)

    def reduce_margin(self) -> torch.Tensor:
        """(T,) -> (S,): the margin of a randomly drawn member."""
        uniform = torch.rand(self.student_channels, device=self.margin.device)
        column = self.draw_columns(uniform).unsqueeze(1)
        return self.group_margins().gather(1, column).squeeze(1)
