"""OFD, the feature baseline of the MGD recipes, at the MGD positions.

OFD (Heo et al., "A Comprehensive Overhaul of Feature Distillation",
ICCV 2019) is MMRazor's: :class:`OFDDistiller` with ``OFDLoss``,
``OFDTeacherConnector`` and ``OverhaulFeatureDistillation``. What this module
adds is where it distils: the ``positions`` of an MGD config, so that a
comparison config names the same places as its MGD sibling instead of
restating them.
"""
from typing import Dict, Sequence, Union

from mmrazor.models.distillers import OFDDistiller
from mmrazor.registry import MODELS

from .matching_guided_distiller import pair_positions, pop_record_indices

# The distiller arguments that ``positions`` builds.
BUILT_ARGS = ('student_recorders', 'teacher_recorders', 'connectors',
              'distill_losses', 'loss_forward_mappings')


def _side(position: dict, index: int, side: str, keys: Sequence[str]) -> dict:
    """``position[side]`` as a plain dict, checked for ``keys``."""
    name = position.get('name', f'mgd{index}')
    where = f'OFD position {index} (MGD position {name!r})'
    if side not in position:
        raise ValueError(f'{where} has no {side!r} entry.')
    part = dict(position[side])
    missing = [key for key in keys if key not in part]
    if missing:
        raise ValueError(
            f'{where} lacks {", ".join(f"{side}.{k}" for k in missing)}; '
            'OFD needs student=dict(type, source, channels[, record_idx]) '
            'and teacher=dict(channels, margin_bn).')
    return part


def ofd_distiller_args(positions: Union[Sequence[dict],
                                        dict], loss_weights: Sequence[float],
                       mul_factor: float) -> Dict[str, dict]:
    """The :class:`OFDDistiller` arguments that distil at ``positions``.

    Position k (0-based) gets recorders ``ofd{k}`` on both sides,
    connectors ``ofd{k}_s`` and ``ofd{k}_t`` and the loss ``loss_ofd{k}``:

    - student: the MGD student recorder (the position's ``student`` minus
      ``channels``, ``record_idx`` and ``data_idx``, which go to the loss
      mapping), then a trainable 1x1 conv + BN without activation,
      (N, S, H, W) -> (N, T, H, W), S and T the two ``channels``;
    - teacher: ``ModuleOutputs`` of ``teacher.margin_bn``. MMRazor's OFD
      takes the margins from the BatchNorm that the teacher recorder
      names, so it records that BN. MMPretrain's residual blocks add the
      shortcut to its output in place, so the record is the pre-ReLU stage
      output that MGD distils; the MGD teacher recorder is not used.
      ``OFDTeacherConnector`` clips it at the margins (N, T, H, W);
    - ``OFDLoss(loss_weight=loss_weights[k], mul_factor=mul_factor)``.

    ``positions`` is what ``MatchingGuidedDistiller`` takes (a list, or the
    per-side dict); their ``loss_weight``, ``reducer`` and ``name`` are
    MGD's and not used here.

    Raises:
        ValueError: naming the position that lacks a key OFD needs, or if
            there are no positions or not one loss weight per position.
    """
    if isinstance(positions, dict):
        positions = pair_positions(positions)
    positions = list(positions)
    if not positions:
        raise ValueError('OFDAtPositionsDistiller needs at least one '
                         'position (positions=[]).')
    if len(loss_weights) != len(positions):
        raise ValueError(
            f'OFDAtPositionsDistiller: {len(loss_weights)} loss_weights for '
            f'{len(positions)} positions; give one per position.')
    args = {key: {} for key in BUILT_ARGS}
    for k, position in enumerate(positions):
        student = _side(position, k, 'student', ('type', 'source', 'channels'))
        teacher = _side(position, k, 'teacher', ('channels', 'margin_bn'))
        s_channels = student.pop('channels')
        record_idx, data_idx = pop_record_indices(student)
        args['student_recorders'][f'ofd{k}'] = student
        args['teacher_recorders'][f'ofd{k}'] = dict(
            type='ModuleOutputs', source=teacher['margin_bn'])
        args['connectors'][f'ofd{k}_s'] = dict(
            type='ConvModuleConnector',
            in_channel=s_channels,
            out_channel=teacher['channels'],
            norm_cfg=dict(type='BN'),
            act_cfg=None)
        args['connectors'][f'ofd{k}_t'] = dict(type='OFDTeacherConnector')
        args['distill_losses'][f'loss_ofd{k}'] = dict(
            type='OFDLoss', loss_weight=loss_weights[k], mul_factor=mul_factor)
        args['loss_forward_mappings'][f'loss_ofd{k}'] = dict(
            s_feature=dict(
                from_student=True,
                recorder=f'ofd{k}',
                record_idx=record_idx,
                data_idx=data_idx,
                connector=f'ofd{k}_s'),
            t_feature=dict(
                from_student=False, recorder=f'ofd{k}', connector=f'ofd{k}_t'))
    return args


@MODELS.register_module()
class OFDAtPositionsDistiller(OFDDistiller):
    """MMRazor's :class:`OFDDistiller` at the positions of an MGD config.

    For ``OverhaulFeatureDistillation``, which fills in the teacher
    connectors' margins from the recorded teacher BatchNorms::

        distiller=dict(
            type='OFDAtPositionsDistiller',
            positions=_base_.model.distiller.positions,
            loss_weights=[1 / 8, 1 / 4, 1 / 2, 1],
            mul_factor=1e4)

    Args:
        positions (list[dict] | dict): the MGD positions; see
            :func:`ofd_distiller_args` for what each becomes.
        loss_weights (Sequence[float]): the ``OFDLoss`` weight of each
            position.
        mul_factor (float): every ``OFDLoss`` divides its sum over the
            batch by the batch size and by this factor.
        **kwargs: the other arguments of ``ConfigurableDistiller``
            (e.g. ``distill_deliveries``), not those ``positions`` builds.
    """

    def __init__(self, positions: Union[Sequence[dict],
                                        dict], loss_weights: Sequence[float],
                 mul_factor: float, **kwargs) -> None:
        clash = sorted(set(kwargs) & set(BUILT_ARGS))
        if clash:
            raise ValueError(
                f'OFDAtPositionsDistiller builds {clash} from `positions`; '
                'use OFDDistiller to give them explicitly.')
        super().__init__(
            **ofd_distiller_args(positions, loss_weights, mul_factor),
            **kwargs)
