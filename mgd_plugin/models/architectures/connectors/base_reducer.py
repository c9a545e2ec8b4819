"""Common machinery of the MGD channel reducers.

A channel reducer turns a teacher feature with ``T`` channels into a
distillation target with ``S <= T`` channels, following a channel matching
that the matching pass (``MatchingUpdateHook``) recomputes during training.
"""
import numbers
from abc import abstractmethod
from typing import Dict, Optional, Tuple

import torch
from mmrazor.models.architectures.connectors.base_connector import \
    BaseConnector


def _check_positive_int(value, name: str) -> int:
    # bool is an Integral too, but ``True`` channels is certainly a mistake.
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or value <= 0):
        raise ValueError(f'{name} must be a positive int, got {value!r}.')
    return int(value)


def _as_index_vector(assignment, length: int, what: str) -> torch.Tensor:
    """Validate ``assignment`` as a 1-D integer array of ``length`` entries.

    Returns it as an int64 tensor on the CPU, where the host-side checks of
    :meth:`BaseChannelReducer.update_matching` run.
    """
    try:
        index = torch.as_tensor(assignment)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f'The {what} must be an integer array, got '
                         f'{type(assignment).__name__}.') from error
    if (index.dtype.is_floating_point or index.dtype.is_complex
            or index.dtype == torch.bool):
        raise ValueError(
            f'The {what} must hold integers, got dtype {index.dtype}.')
    if index.dim() != 1 or index.numel() != length:
        raise ValueError(f'The {what} must have shape ({length},), got '
                         f'{tuple(index.shape)}.')
    return index.detach().to(device='cpu', dtype=torch.int64)


class BaseChannelReducer(BaseConnector):
    """Base class of the MGD reducers from teacher to student channels.

    Reducers are connectors applied to the (frozen) teacher feature. Student
    channel ``i`` is matched to a group ``G_i`` of teacher channels; a
    subclass reduces each group to one channel (:meth:`reduce_feature`) and
    the per-teacher-channel margins of the group to one margin
    (:meth:`reduce_margin`). The target is the reduced feature clamped from
    below by the reduced margin (see "A Comprehensive Overhaul of Feature
    Distillation").

    The default matching is a balanced partition: every teacher channel
    belongs to exactly one student channel and every student channel gets
    ``floor(T / S)`` or ``ceil(T / S)`` teacher channels. A reducer with
    another kind of matching (:class:`SparseMatchReducer`) overrides
    :meth:`assignment_length`, :meth:`group_capacity` and
    :meth:`build_groups`.

    Buffers (all persistent, with shapes fixed at build time, so that a
    checkpoint taken after any matching loads into a freshly built reducer):

    - ``assignment``: int64, shape ``(assignment_length,)``, the last
      matching exactly as passed to :meth:`update_matching`.
    - ``group_index``: int64, shape ``(S, G)`` with ``G = group_capacity``:
      row ``i`` lists the teacher channels of ``G_i`` in ascending order;
      groups smaller than ``G`` are padded by repeating their first member,
      which does not change a max, an abs-max or a draw limited to the true
      members.
    - ``group_size``: int64, shape ``(S,)``, the true size of each group.
    - ``margin``: float, shape ``(T,)``, per teacher channel. It starts at
      ``-inf`` (no lower bound, i.e. a plain channel reducer) until
      :meth:`set_margin` is called.
    - ``matching_installed``: bool scalar, whether a matching was installed.

    Args:
        student_channels (int): ``S``, the student's channel count.
        teacher_channels (int): ``T``, the teacher's channel count,
            ``T >= S``.
        init_cfg (dict, optional): The config to control the initialization.
            Defaults to None.
    """

    #: Whether ``update_matching`` takes a one-to-one (sparse) matching,
    #: i.e. what ``match_channels(cost, sparse=True)`` returns.
    sparse_matching = False

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_channels = _check_positive_int(student_channels,
                                                    'student_channels')
        self.teacher_channels = _check_positive_int(teacher_channels,
                                                    'teacher_channels')
        if self.student_channels > self.teacher_channels:
            raise ValueError(
                f'{type(self).__name__} reduces teacher channels to fewer '
                f'student channels, so student_channels '
                f'({self.student_channels}) must not exceed teacher_channels '
                f'({self.teacher_channels}).')
        num_s, num_t = self.student_channels, self.teacher_channels
        self.register_buffer(
            'assignment',
            torch.zeros(self.assignment_length(), dtype=torch.int64))
        self.register_buffer(
            'group_index',
            torch.zeros(num_s, self.group_capacity(), dtype=torch.int64))
        self.register_buffer('group_size',
                             torch.zeros(num_s, dtype=torch.int64))
        self.register_buffer('margin', torch.full((num_t, ), -float('inf')))
        self.register_buffer('matching_installed',
                             torch.zeros((), dtype=torch.bool))
        # Host-side mirror of ``matching_installed``: forward must not read a
        # device tensor to decide whether to raise.
        self._has_matching = False

    # ------------------------------------------------------------------
    # Matching layout, overridden by reducers with another kind of matching.
    # ------------------------------------------------------------------
    def assignment_length(self) -> int:
        """Length of the array taken by :meth:`update_matching`: ``T``, the
        student channel of every teacher channel."""
        return self.teacher_channels

    def group_capacity(self) -> int:
        """``G``, the width of ``group_index``: the largest group size."""
        return -(-self.teacher_channels // self.student_channels)

    def build_groups(
            self,
            assignment: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Validate a balanced assignment and turn it into groups.

        Args:
            assignment (torch.Tensor): int64, shape (T,), on the CPU:
                ``assignment[j]`` is the student channel of teacher channel
                ``j``.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``group_index`` (S, G) and
            ``group_size`` (S,), both int64, see the class docstring.
        """
        num_s, num_t = self.student_channels, self.teacher_channels
        if bool(((assignment < 0) | (assignment >= num_s)).any()):
            raise ValueError(
                f'Every entry of the assignment must be a student channel in '
                f'[0, {num_s}), got values in '
                f'[{int(assignment.min())}, {int(assignment.max())}].')
        group_size = torch.bincount(assignment, minlength=num_s)
        smallest, largest = num_t // num_s, -(-num_t // num_s)
        if bool(((group_size < smallest) | (group_size > largest)).any()):
            raise ValueError(
                f'The assignment must give every student channel '
                f'{smallest} or {largest} teacher channels (T={num_t}, '
                f'S={num_s}), got group sizes {group_size.tolist()}.')
        # A stable sort lays the groups out contiguously, each in ascending
        # teacher-channel order; a member's column is its rank in that run.
        members = torch.argsort(assignment, stable=True)
        owner = assignment[members]
        group_start = torch.cumsum(group_size, 0) - group_size
        column = torch.arange(num_t) - group_start[owner]
        # Every group is non-empty (S <= T), so its first member exists and
        # can pad the group up to G columns.
        group_index = members[group_start].unsqueeze(1).repeat(
            1, self.group_capacity())
        group_index[owner, column] = members
        return group_index, group_size

    # ------------------------------------------------------------------
    # State updates, called by the distiller and the matching hook.
    # ------------------------------------------------------------------
    def set_margin(self, margin: torch.Tensor) -> None:
        """Set the per-teacher-channel margins.

        Args:
            margin (torch.Tensor): shape (T,), e.g. from
                :func:`mgd_plugin.models.utils.bn_margin` on the BN before
                the teacher's ReLU.
        """
        margin = torch.as_tensor(margin)
        if tuple(margin.shape) != (self.teacher_channels, ):
            raise ValueError(
                f'The margin must have shape ({self.teacher_channels},), one '
                f'value per teacher channel, got {tuple(margin.shape)}.')
        self.margin.copy_(margin.detach())

    def update_matching(self, assignment) -> None:
        """Install a new channel matching.

        Args:
            assignment (np.ndarray | torch.Tensor): what
                ``mgd_plugin.matching.match_channels`` returns. For the
                balanced reducers an int array of length T,
                ``assignment[j]`` being the student channel of teacher
                channel ``j``; see the subclass for other layouts.
        """
        index = _as_index_vector(assignment, self.assignment_length(),
                                 'assignment')
        group_index, group_size = self.build_groups(index)
        # copy_ keeps each buffer on the reducer's current device.
        self.assignment.copy_(index)
        self.group_index.copy_(group_index)
        self.group_size.copy_(group_size)
        self.matching_installed.fill_(True)
        self._has_matching = True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys,
                              error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # Loading happens outside the training step, where reading the
        # buffer back to the host is harmless.
        self._has_matching = bool(self.matching_installed)

    # ------------------------------------------------------------------
    # Forward.
    # ------------------------------------------------------------------
    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Compute the distillation target.

        Args:
            feature (torch.Tensor): teacher feature, shape (N, T, H, W). It is
                detached: the target is a constant for the student.

        Returns:
            torch.Tensor: shape (N, S, H, W), same dtype as ``feature``:
            ``max(reduced feature, reduced margin)`` per student channel.
        """
        if not self._has_matching:
            raise RuntimeError(
                f'{type(self).__name__} has no channel matching yet: a '
                f'matching pass (MatchingUpdateHook) must run first and call '
                f'update_matching().')
        if feature.dim() != 4 or feature.size(1) != self.teacher_channels:
            raise ValueError(
                f'{type(self).__name__} expects a teacher feature of shape '
                f'(N, {self.teacher_channels}, H, W), got '
                f'{tuple(feature.shape)}.')
        feature = feature.detach()
        reduced = self.reduce_feature(feature)
        # Under autocast the teacher feature may be float16 while the margin
        # buffer is float32; torch.max needs one dtype.
        margin = self.reduce_margin().to(dtype=reduced.dtype)
        return torch.max(reduced, margin.view(1, -1, 1, 1))

    @staticmethod
    def gather_channels(feature: torch.Tensor,
                        channels: torch.Tensor) -> torch.Tensor:
        """``feature.index_select(1, channels)``, faster on CPU.

        A contiguous (N, T, H, W) feature is read as the rows of an
        (N * T, H * W) matrix and gathered along dim 0, which PyTorch copies
        with all threads, where ``index_select`` along dim 1 copies with one.

        Args:
            feature (torch.Tensor): shape (N, T, H, W).
            channels (torch.Tensor): int64 channel indices, shape (K,).

        Returns:
            torch.Tensor: shape (N, K, H, W), contiguous.
        """
        if not feature.is_contiguous():
            return feature.index_select(1, channels)
        num, num_t, height, width = feature.shape
        rows = torch.arange(
            0, num * num_t, num_t, device=feature.device).unsqueeze(1)
        rows = rows.add(channels.unsqueeze(0)).view(-1)
        gathered = feature.view(num * num_t,
                                height * width).index_select(0, rows)
        return gathered.view(num, channels.numel(), height, width)

    def gather_columns(self, feature: torch.Tensor) -> torch.Tensor:
        """Gather every group's members, group column first.

        Column ``k`` holds the ``k``-th member of every group, so that a
        reduction over the group runs over dim 1 of contiguous (S, H, W)
        blocks, which is vectorised (over a trailing group dim it would be
        a strided one).

        Args:
            feature (torch.Tensor): shape (N, T, H, W).

        Returns:
            torch.Tensor: shape (N, G, S, H, W), ``[:, k, i]`` being teacher
            channel ``group_index[i, k]`` (padding included).
        """
        num, _, height, width = feature.shape
        members = self.gather_channels(feature,
                                       self.group_index.t().reshape(-1))
        return members.view(num, self.group_capacity(), self.student_channels,
                            height, width)

    def group_margins(self) -> torch.Tensor:
        """Margins of every group's members, shape (S, G) (padding
        included)."""
        return self.margin[self.group_index]

    @abstractmethod
    def reduce_feature(self, feature: torch.Tensor) -> torch.Tensor:
        """Reduce the teacher feature (N, T, H, W) to (N, S, H, W)."""

    @abstractmethod
    def reduce_margin(self) -> torch.Tensor:
        """Reduce the margins (T,) to one margin per student channel (S,)."""

    def extra_repr(self) -> str:
        return (f'student_channels={self.student_channels}, '
                f'teacher_channels={self.teacher_channels}')
