"""Sparse matching (SM): one distinct teacher channel per student channel."""
from typing import Tuple

import torch
from mmrazor.registry import MODELS

from .base_reducer import BaseChannelReducer


@MODELS.register_module()
class SparseMatchReducer(BaseChannelReducer):
    """Keep the one teacher channel matched to each student channel.

    The matching is one-to-one: student channel ``i`` gets the teacher
    channel ``assignment[i]`` and its margin; the other ``T - S`` teacher
    channels are unused. ``assignment`` is a length-S array of distinct
    teacher channels, ``group_index`` has shape (S, 1) and ``group_size`` is
    all ones.

    Args:
        student_channels (int): ``S``.
        teacher_channels (int): ``T``, ``T >= S``.
        init_cfg (dict, optional): The config to control the initialization.
            Defaults to None.
    """

    sparse_matching = True

    def assignment_length(self) -> int:
        """``S``: the teacher channel of every student channel."""
        return self.student_channels

    def group_capacity(self) -> int:
        """Every group is a single teacher channel."""
        return 1

    def build_groups(
            self,
            assignment: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Validate a one-to-one matching and turn it into groups.

        Args:
            assignment (torch.Tensor): int64, shape (S,), on the CPU:
                distinct teacher channels, ``assignment[i]`` for student
                channel ``i``.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``group_index`` (S, 1) and
            ``group_size`` (S,) of ones.
        """
        num_t = self.teacher_channels
        if bool(((assignment < 0) | (assignment >= num_t)).any()):
            raise ValueError(
                f'Every entry of the sparse assignment must be a teacher '
                f'channel in [0, {num_t}), got values in '
                f'[{int(assignment.min())}, {int(assignment.max())}].')
        if torch.unique(assignment).numel() != assignment.numel():
            raise ValueError(
                'The sparse assignment must match every student channel to '
                'a distinct teacher channel; some teacher channels repeat.')
        return assignment.unsqueeze(1), torch.ones_like(assignment)

    def reduce_feature(self, feature: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) -> (N, S, H, W)."""
        return self.gather_channels(feature, self.group_index.squeeze(1))

    def reduce_margin(self) -> torch.Tensor:
        """(T,) -> (S,): the matched channel's margin."""
        return self.margin[self.group_index.squeeze(1)]
