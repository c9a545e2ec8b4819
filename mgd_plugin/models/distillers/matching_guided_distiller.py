"""The MGD distiller: MMRazor's ConfigurableDistiller plus channel matching.

A *position* is one distillation loss whose teacher input goes through a
channel reducer (:class:`BaseChannelReducer`). The distiller finds the
positions in ``loss_forward_mappings``; for each one it accumulates the
matching cost in a matching pass and installs the solved groups in the
reducer.
"""
from dataclasses import dataclass
from operator import attrgetter
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..architectures.connectors import BaseChannelReducer
from ..utils import bn_margin


@dataclass
class MatchingPosition:
    """Where one reducer takes its features from (names as in the config)."""
    name: str  # the reducer's connector name
    student_recorder: str
    student_record_idx: int
    student_data_idx: Optional[int]
    teacher_recorder: str
    teacher_record_idx: int
    teacher_data_idx: Optional[int]
    margin_bn: str


def _record_args(mapping: dict):
    return (mapping['recorder'], mapping.get('record_idx',
                                             0), mapping.get('data_idx', None))


def pop_record_indices(side: dict) -> Tuple[int, Optional[int]]:
    """Remove and return the ``record_idx`` and ``data_idx`` of one side of
    a position; what remains of ``side`` is its recorder config.

    ``record_idx`` (default 0) picks the call of the recorded module;
    ``data_idx`` defaults to 0 for a ``ModuleInputs`` recorder, whose record
    is the tuple of the call's inputs, and to None otherwise.
    """
    record_idx = side.pop('record_idx', 0)
    data_idx = side.pop('data_idx',
                        0 if 'Inputs' in side.get('type', '') else None)
    return record_idx, data_idx


def pair_positions(positions: dict) -> List[dict]:
    """The per-side ``positions`` form as a list of compact positions.

    ``dict(student=[s0, s1, ...], teacher=[t0, t1, ...], loss_weight=...)``
    pairs the k-th student position with the k-th teacher position, as the
    reference pairs the feature lists of its two networks. ``loss_weight``
    is one number for every position or a list of the same length, divided
    by ``loss_factor`` (default 1; the reference's factor is 1e4 at
    224 px); any other key (``reducer``) applies to every position.

    Raises:
        ValueError: if the two sides list different numbers of positions,
            or ``loss_weight`` a third number.
    """
    positions = dict(positions)
    try:
        students = list(positions.pop('student'))
        teachers = list(positions.pop('teacher'))
        weights = positions.pop('loss_weight')
    except KeyError as missing:
        raise ValueError(
            f'MGD positions given per side lack {missing}; they need '
            'student=[...], teacher=[...] and loss_weight.') from None
    if len(students) != len(teachers):
        raise ValueError(
            f'MGD positions: the student has {len(students)} distillation '
            f'positions and the teacher {len(teachers)} (positions.student '
            'and positions.teacher); the k-th student position is distilled '
            'from the k-th teacher position, so both need the same number.')
    if isinstance(weights, (list, tuple)):
        if len(weights) != len(students):
            raise ValueError(
                f'MGD positions: {len(weights)} loss weights '
                f'(positions.loss_weight) for {len(students)} positions.')
    else:
        weights = [weights] * len(students)
    factor = positions.pop('loss_factor', 1)
    if isinstance(factor,
                  bool) or not isinstance(factor,
                                          (int, float)) or not factor > 0:
        raise ValueError('MGD positions.loss_factor must be a positive '
                         f'number, got {factor!r}.')
    weights = [weight / factor for weight in weights]
    return [
        dict(positions, student=student, teacher=teacher, loss_weight=weight)
        for student, teacher, weight in zip(students, teachers, weights)
    ]


def expand_positions(positions: Union[Sequence[dict], dict], reducer: dict,
                     student_connector: dict) -> Dict[str, dict]:
    """Turn the compact ``positions`` form into ConfigurableDistiller
    arguments (recorders, connectors, losses, mappings) plus ``margin_bns``.

    Position ``name`` (default ``mgd{k}``) gets recorders ``{name}_s`` and
    ``{name}_t``, connectors ``{name}_s_bn`` (student) and
    ``{name}_reducer`` (teacher), and the loss ``loss_{name}``. A dict is
    the per-side form (:func:`pair_positions`).
    """
    if isinstance(positions, dict):
        positions = pair_positions(positions)
    parts = {
        key: {}
        for key in ('student_recorders', 'teacher_recorders', 'connectors',
                    'distill_losses', 'loss_forward_mappings', 'margin_bns')
    }
    for index, position in enumerate(positions):
        position = dict(position)
        name = position.pop('name', f'mgd{index}')
        try:
            student = dict(position.pop('student'))
            teacher = dict(position.pop('teacher'))
            loss_weight = position.pop('loss_weight')
            s_channels = student.pop('channels')
            t_channels = teacher.pop('channels')
            margin_bn = teacher.pop('margin_bn')
        except KeyError as missing:
            raise ValueError(
                f'MGD position {name!r} lacks {missing}; it needs '
                'student=dict(type, source, channels[, record_idx]), '
                'teacher=dict(type, source, channels, margin_bn[, '
                'record_idx]) and loss_weight.') from None
        position_reducer = dict(position.pop('reducer', reducer))
        if position:
            raise ValueError(f'MGD position {name!r}: unknown keys '
                             f'{sorted(position)}.')
        mapping = {}
        for side, recorder, key in ((student, f'{name}_s', 's_feature'),
                                    (teacher, f'{name}_t', 't_feature')):
            record_idx, data_idx = pop_record_indices(side)
            is_student = side is student
            parts['student_recorders' if is_student else 'teacher_recorders'][
                recorder] = side
            mapping[key] = dict(
                from_student=is_student,
                recorder=recorder,
                record_idx=record_idx,
                data_idx=data_idx,
                connector=f'{name}_s_bn' if is_student else f'{name}_reducer')
        parts['connectors'][f'{name}_s_bn'] = dict(
            student_connector, in_channels=s_channels)
        parts['connectors'][f'{name}_reducer'] = dict(
            position_reducer,
            student_channels=s_channels,
            teacher_channels=t_channels)
        parts['distill_losses'][f'loss_{name}'] = dict(
            type='MatchingGuidedLoss', loss_weight=loss_weight)
        parts['loss_forward_mappings'][f'loss_{name}'] = mapping
        parts['margin_bns'][f'{name}_reducer'] = margin_bn
    return parts


def _merge(name: str, explicit: Optional[dict], generated: dict) -> dict:
    merged = dict(explicit or {})
    clash = sorted(set(merged) & set(generated))
    if clash:
        raise ValueError(f'{name} {clash} are defined both explicitly and by '
                         '`positions`; rename one.')
    merged.update(generated)
    return merged


def channel_similarity(s_hat: torch.Tensor,
                       t_hat: torch.Tensor) -> torch.Tensor:
    """``sum_n s_hat[n] @ t_hat[n].T``: (N, S, K) and (N, T, K) -> (S, T).

    One large product over N*K first copies the teacher's maps into
    (K, N, T) order, a strided transpose of N*T*K values: at the 28 px
    positions of the Fashion-MNIST recipe that copy was a fifth of the
    whole matching pass (measured). Per-sample products read both as they
    are and add up N*S*T values instead. The cheaper of the two is taken:
    per-sample products where S < K (shallow, high-resolution positions),
    the single product otherwise (ResNet-50's 7x7 stage: 512 x 2048 x 49).
    """
    if s_hat.size(1) < s_hat.size(2):
        return torch.bmm(s_hat, t_hat.transpose(1, 2)).sum(0)
    return torch.einsum('nsk,ntk->st', s_hat, t_hat)


@MODELS.register_module()
class MatchingGuidedDistiller(ConfigurableDistiller):
    """ConfigurableDistiller whose teacher connectors are channel reducers.

    Positions can be given compactly with ``positions``, explicitly in
    MMRazor's ConfigurableDistiller form, or both (e.g. MGD positions plus
    an explicit logit KD loss)::

        positions=[
            dict(
                student=dict(type='ModuleInputs',
                             source='backbone.layer1.1.relu', record_idx=1,
                             channels=64),
                teacher=dict(type='ModuleInputs',
                             source='backbone.layer1.2.relu', record_idx=2,
                             channels=256,
                             margin_bn='backbone.layer1.2.bn3'),
                loss_weight=1 / 8 / 1e4),
            ...]

    or per side, the k-th student position paired with the k-th teacher
    position (:func:`pair_positions`)::

        positions=dict(
            student=[dict(type='ModuleInputs', source=..., channels=64),
                     ...],
            teacher=[dict(type='ModuleInputs', source=..., channels=256,
                          margin_bn=...), ...],
            loss_weight=[1 / 8, 1 / 4, 1 / 2, 1],
            loss_factor=1e4)

    Args:
        positions (list[dict] | dict): per position, the student and
            teacher recorders (an MMRazor recorder config plus ``channels``
            and optionally ``record_idx``/``data_idx``), the teacher
            ``margin_bn``, the loss weight and optionally its own
            ``reducer``; or the per-side dict. Expanded by
            :func:`expand_positions`.
        reducer (dict): the reducer of every position that names none.
        student_connector (dict): the trainable connector on the student
            feature; ``in_channels`` is filled in.
        margin_bns (dict[str, str]): for explicit-form reducer connectors,
            the name of the teacher BatchNorm that precedes the recorded
            (pre-ReLU) teacher feature; its affine parameters give the
            margins.
        **kwargs: the arguments of :class:`ConfigurableDistiller`. An
            explicit MGD loss maps its student input (``from_student=True``,
            usually through a BatchNorm connector) and its teacher input
            (``from_student=False``, ``connector=<reducer>``).

    The matching cost of a position uses the recorded student feature
    *before* its connector, as the matching is about the student's own
    channels.
    """

    def __init__(self,
                 positions: Union[Sequence[dict], dict] = (),
                 reducer: dict = dict(type='AbsMaxPoolReducer'),
                 student_connector: dict = dict(
                     type='NormConnector', norm_cfg=dict(type='BN')),
                 margin_bns: Optional[Dict[str, str]] = None,
                 **kwargs) -> None:
        generated = expand_positions(positions, reducer, student_connector)
        margin_bns = _merge('margin_bns', margin_bns,
                            generated.pop('margin_bns'))
        for key, value in generated.items():
            kwargs[key] = _merge(key, kwargs.get(key), value)
        super().__init__(**kwargs)
        self.positions: List[MatchingPosition] = self._find_positions(
            dict(margin_bns))
        if not self.positions:
            raise ValueError(
                'MatchingGuidedDistiller found no loss whose teacher input '
                'goes through a channel reducer connector (e.g. '
                'AbsMaxPoolReducer); check connectors and '
                'loss_forward_mappings.')
        # Matching-pass accumulators, (S, T) float64 per position, on the
        # features' device; plain attributes, never checkpointed.
        self._cost_sums: Dict[str, torch.Tensor] = {}
        self._cost_count = 0

    def _find_positions(self, margin_bns: dict) -> List[MatchingPosition]:
        positions = []
        for loss_name, mapping in self.loss_forward_mappings.items():
            reducer_inputs = [
                m for m in mapping.values()
                if not m['from_student'] and isinstance(
                    self.connectors[m['connector']] if m.
                    get('connector') else None, BaseChannelReducer)
            ]
            if not reducer_inputs:
                continue
            student_inputs = [m for m in mapping.values() if m['from_student']]
            if len(reducer_inputs) != 1 or len(student_inputs) != 1:
                raise ValueError(
                    f'MGD loss {loss_name!r} must map exactly one student '
                    'input and one teacher input through a reducer.')
            teacher, student = reducer_inputs[0], student_inputs[0]
            name = teacher['connector']
            if name not in margin_bns:
                raise ValueError(
                    f'margin_bns has no teacher BatchNorm for reducer '
                    f'{name!r} (loss {loss_name!r}).')
            s_rec, s_idx, s_data = _record_args(student)
            t_rec, t_idx, t_data = _record_args(teacher)
            positions.append(
                MatchingPosition(name, s_rec, s_idx, s_data, t_rec, t_idx,
                                 t_data, margin_bns.pop(name)))
        if margin_bns:
            raise ValueError(
                f'margin_bns names connectors that are not reducers of any '
                f'MGD loss: {sorted(margin_bns)}.')
        return positions

    # ------------------------------------------------------------------
    # Build-time checks and margins.
    # ------------------------------------------------------------------
    @staticmethod
    def _check_sources(model: nn.Module, recorders, side: str) -> None:
        names = dict(model.named_modules())
        for recorder_name, recorder in recorders.recorders.items():
            source = getattr(recorder, 'source', None)
            if (type(recorder).__name__.startswith('Module')
                    and source not in names):
                raise ValueError(
                    f'{side} recorder {recorder_name!r}: source {source!r} '
                    f'is not a module of the {side}.')

    def prepare_from_student(self, model: nn.Module) -> None:
        self._check_sources(model, self.student_recorders, 'student')
        super().prepare_from_student(model)

    def prepare_from_teacher(self, model: nn.Module) -> None:
        self._check_sources(model, self.teacher_recorders, 'teacher')
        super().prepare_from_teacher(model)

    def init_margins(self, teacher: nn.Module) -> None:
        """Give every reducer the margins of its teacher BatchNorm."""
        for position in self.positions:
            try:
                bn = attrgetter(position.margin_bn)(teacher)
            except AttributeError:
                raise ValueError(
                    f'margin_bns[{position.name!r}]: {position.margin_bn!r} '
                    'is not a module of the teacher.') from None
            if not isinstance(bn, _BatchNorm):
                raise ValueError(
                    f'margin_bns[{position.name!r}]: {position.margin_bn!r} '
                    f'is a {type(bn).__name__}, not a BatchNorm.')
            reducer = self.connectors[position.name]
            if bn.num_features != reducer.teacher_channels:
                raise ValueError(
                    f'margin_bns[{position.name!r}]: {position.margin_bn!r} '
                    f'has {bn.num_features} channels but the reducer takes '
                    f'{reducer.teacher_channels} teacher channels.')
            reducer.set_margin(bn_margin(bn))

    def reducer(self, position: MatchingPosition) -> BaseChannelReducer:
        return self.connectors[position.name]

    # ------------------------------------------------------------------
    # Matching pass.
    # ------------------------------------------------------------------
    def reset_matching_costs(self) -> None:
        self._cost_sums = {}
        self._cost_count = 0

    def _recorded(self, position: MatchingPosition, student: bool):
        if student:
            recorder, idx, data_idx = (position.student_recorder,
                                       position.student_record_idx,
                                       position.student_data_idx)
        else:
            recorder, idx, data_idx = (position.teacher_recorder,
                                       position.teacher_record_idx,
                                       position.teacher_data_idx)
        return self.get_record(recorder, student, idx, data_idx)

    def accumulate_matching_costs(self, num_samples: int) -> None:
        """Add the costs of the features recorded by the last forward.

        Only the first ``num_samples`` samples of the batch count. For each
        position, with ``s_hat``/``t_hat`` the L2-normalised H*W maps of each
        channel, adds ``sum_n 2 - 2 <s_hat[n, i], t_hat[n, j]>`` to an
        (S, T) float64 sum kept on the features' device. An all-zero map
        (e.g. a dead channel) has no direction and counts as the zero
        vector: cost 2 against every channel.
        """
        for position in self.positions:
            s_feat = self._recorded(position, True)[:num_samples]
            t_feat = self._recorded(position, False)[:num_samples]
            first_batch = position.name not in self._cost_sums
            if first_batch:
                self._check_shapes(position, s_feat, t_feat)
            # Under autocast the einsum would run in float16/bfloat16 and
            # round away the cost differences the matching decides on.
            with torch.autocast(s_feat.device.type, enabled=False):
                s_hat = F.normalize(s_feat.detach().flatten(2).float(), dim=2)
                t_hat = F.normalize(t_feat.detach().flatten(2).float(), dim=2)
                similarity = channel_similarity(s_hat, t_hat)
            cost = (2.0 * s_feat.size(0) - 2.0 * similarity).double()
            if first_batch:
                self._cost_sums[position.name] = cost
            else:
                self._cost_sums[position.name] += cost
        self._cost_count += num_samples

    def _check_shapes(self, position, s_feat, t_feat) -> None:
        reducer = self.reducer(position)
        if s_feat.dim() != 4 or t_feat.dim() != 4:
            raise ValueError(
                f'MGD position {position.name!r}: recorded features must be '
                f'(N, C, H, W), got student {tuple(s_feat.shape)} and '
                f'teacher {tuple(t_feat.shape)}.')
        if s_feat.shape[2:] != t_feat.shape[2:]:
            raise ValueError(
                f'MGD position {position.name!r}: student and teacher '
                f'spatial sizes differ ({tuple(s_feat.shape[2:])} vs '
                f'{tuple(t_feat.shape[2:])}); record features of the same '
                'resolution.')
        if (s_feat.size(1) != reducer.student_channels
                or t_feat.size(1) != reducer.teacher_channels):
            raise ValueError(
                f'MGD position {position.name!r}: the reducer expects '
                f'{reducer.student_channels} student and '
                f'{reducer.teacher_channels} teacher channels, the recorders '
                f'give {s_feat.size(1)} and {t_feat.size(1)}.')

    def matching_costs(self) -> Dict[str, torch.Tensor]:
        """The accumulated (S, T) cost sums per reducer name, and nothing
        else; divide by :attr:`matching_cost_count` for the mean."""
        return dict(self._cost_sums)

    @property
    def matching_cost_count(self) -> int:
        return self._cost_count
