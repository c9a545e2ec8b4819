"""Find MGD feature positions for a teacher/student pair.

Both networks are built from their configs (no weights), run once on a
dummy input (:func:`~mgd_plugin.utils.feature_trace.trace_forward`), and
cut into *stages*: maximal runs of consecutive blocks whose outputs have
the same (C, H, W). At each spatial size, the first stage of that size is
the network's stage there (MobileNet-V2 has two at 1/16 and at 1/32 of the
input; the reference distils the first of each).

The feature of a stage is the tensor before the activation that produces
the stage output (ResNet: the residual sum of the last block, before its
final ReLU). Where the stage output is not the output of an activation:

* if part of its channels are the activation of a tensor of its last
  block, that tensor (MMPretrain ShuffleNet-V2: ``branch2.2.bn`` of the
  last block, half the channels, whose ReLU is the odd output channels);
* if it has no activation at all (a linear bottleneck: MobileNet-V2), the
  first pre-activation tensor that the next block computes from it at the
  same size (MobileNet-V2: the next block's expansion ``conv.0.bn``).

A pre-activation tensor that leaves a BatchNorm unchanged is recorded as
``ModuleOutputs`` of that BatchNorm; any other (a residual sum) as
``ModuleInputs`` of the activation, at the activation's call that consumes
it (``record_idx``). The teacher's ``margin_bn`` is the BatchNorm whose
output the tensor is, possibly with a shortcut added in place.

Positions are the sizes at which both networks have a stage feature;
position k of K gets ``loss_weight = 1 / 2**(K - k - 1) / loss_factor``
with ``loss_factor = 1e4 * H * W / 224**2`` (the reference's 1e4 at
224 px, scaled by the input area).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config

from .feature_trace import (ActivationCall, BlockCall, FeatureTrace,
                            trace_forward)
from .network_from_config import build_network, network_config
from .position_report import (Feature, MatchedPosition, PositionError,
                              PositionReport, Stage, format_size, format_sizes,
                              loss_factor_for)

__all__ = [
    'PositionError', 'PositionReport', 'find_positions', 'find_stages',
    'loss_factor_for', 'stage_feature'
]


def find_stages(trace: FeatureTrace) -> List[Stage]:
    """Cut the traced blocks, in call order, into stages: maximal runs of
    consecutive blocks with outputs of the same (C, H, W)."""
    stages: List[Stage] = []
    for block in trace.blocks:
        if stages and stages[-1].blocks[-1].shape == block.shape:
            stages[-1].blocks.append(block)
        else:
            stages.append(Stage([block]))
    return stages


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape


def _feature(trace: FeatureTrace, act: ActivationCall,
             stage: Stage) -> Feature:
    """The recorder and margin BN of the tensor that ``act`` consumes."""
    tensor = act.input
    recorder = None
    margin_bn = None
    for norm in trace.norms:
        if norm.order > act.order or not _same_tensor(norm.output, tensor):
            continue
        margin_bn = norm.module  # the latest one that made this tensor
        if norm.output is tensor and norm.version == act.input_version:
            recorder = dict(type='ModuleOutputs', source=norm.module)
            if norm.call:
                recorder['record_idx'] = norm.call
        else:
            recorder = None
    if recorder is None:
        recorder = dict(
            type='ModuleInputs', source=act.module, record_idx=act.call)
    return Feature(recorder, tensor.size(1), tuple(tensor.shape[2:]),
                   margin_bn, stage)


def _channels_within(part: torch.Tensor, whole: torch.Tensor) -> bool:
    """Whether every channel of ``part`` equals some channel of ``whole``
    (both (N, C, H, W))."""
    part = part.transpose(0, 1).flatten(1)
    whole = whole.transpose(0, 1).flatten(1)
    whole_sums = whole.sum(1)
    # Sums only shortlist the candidates (they may round differently).
    tolerance = 1e-4 * (1 + whole_sums.abs())
    for channel in part:
        candidates = whole[(whole_sums - channel.sum()).abs() <= tolerance]
        if not any(torch.equal(channel, c) for c in candidates):
            return False
    return True


def stage_feature(trace: FeatureTrace, stage: Stage,
                  next_block: Optional[BlockCall],
                  role: str) -> Tuple[Optional[Feature], Optional[str]]:
    """The pre-activation feature of ``stage``, and a note when it is not
    the stage output itself (or when there is none)."""
    last = stage.blocks[-1]
    output = last.output
    where = (f'{role}, {format_size(stage.size)}: the output of '
             f'{last.name} ({stage.channels} ch)')
    for act in trace.activations:
        if act.output is output:
            return _feature(trace, act, stage), None
    inside = [
        act for act in trace.activations_between(last.start, last.end)
        if act.input.shape[2:] == output.shape[2:]
    ]
    for act in reversed(inside):
        if _channels_within(act.output, output):
            feature = _feature(trace, act, stage)
            feature.note = (
                f'{where} is not the output of an activation, so it has no '
                'pre-activation tensor; recorded instead the last '
                f'pre-activation tensor of that block whose activation '
                f'gives {feature.channels} of the {stage.channels} output '
                f'channels: {feature.recorder["source"]}.')
            return feature, feature.note
    if inside and next_block is not None:
        # The block computes activations, but none of them reaches its
        # output: a linear output (MobileNet-V2's projection).
        following = [
            act for act in trace.activations_between(next_block.start,
                                                     next_block.end)
            if act.input.shape[2:] == output.shape[2:]
        ]
        if following:
            feature = _feature(trace, following[0], stage)
            feature.note = (
                f'{where} has no activation (a linear output), so it has '
                'no pre-activation tensor; recorded instead the first '
                f'pre-activation tensor that {next_block.name} computes '
                f'from it at {format_size(stage.size)}: '
                f'{feature.recorder["source"]} ({feature.channels} ch).')
            return feature, feature.note
    return None, (f'{where} has no pre-activation tensor at its size; '
                  'this stage is not used.')


def network_features(trace: FeatureTrace, stages: List[Stage],
                     role: str) -> Tuple[Dict[tuple, Feature], List[str]]:
    """Per spatial size, the feature of the first stage of that size that
    has one; plus a note for each stage that has none."""
    features: Dict[tuple, Feature] = {}
    notes = []
    for stage in stages:
        if stage.size in features:
            continue
        after = next(index for index, block in enumerate(trace.blocks)
                     if block is stage.blocks[-1]) + 1
        next_block = trace.blocks[after] if after < len(trace.blocks) else None
        feature, note = stage_feature(trace, stage, next_block, role)
        if feature is None:
            notes.append(note)
        else:
            features[stage.size] = feature
    return features, notes


def find_positions(teacher: Union[str, Config],
                   student: Union[str, Config, None] = None,
                   input_size: Sequence[int] = (224, 224),
                   in_channels: Optional[int] = None,
                   num_positions: Optional[int] = None) -> PositionReport:
    """MGD positions for ``teacher`` and ``student`` (config files or
    :class:`Config` objects; see :func:`network_config`).

    Args:
        student: by default the student (``architecture``) of ``teacher``,
            which must then be a distillation config.
        input_size: (H, W) of the dummy input, the training input size.
        in_channels: image channels; by default the one the configs'
            backbones declare (``in_channels``), else 3.
        num_positions: keep only the last (deepest) K positions; all by
            default.

    Raises:
        PositionError: a config that gives no network, no stage of equal
            size in both networks, a student feature wider than the
            teacher's, a teacher feature without a BatchNorm, or an
            impossible ``num_positions``.
    """
    height, width = input_size
    configs = [
        network_config(teacher, 'teacher'),
        network_config(teacher, 'student', distillation_only=True)
        if student is None else network_config(student, 'student')
    ]
    networks = [
        build_network(configs[0], 'teacher'),
        build_network(configs[1], 'student')
    ]
    if in_channels is None:
        declared = {config.in_channels for config in configs}
        if len(declared) > 1:
            raise PositionError(
                f'teacher and student take different image channels '
                f'{sorted(declared)}; pass --in-channels.')
        in_channels = declared.pop()
    inputs = torch.randn(
        1,
        in_channels,
        height,
        width,
        generator=torch.Generator().manual_seed(0))
    stages, features, notes = [], [], []
    for network in networks:
        try:
            trace = trace_forward(network.traced, inputs, network.prefix)
        except Exception as error:
            raise PositionError(
                f'The {network.role} {network.description} fails on a '
                f'{format_size(inputs.shape)} input (check --input-size and '
                f'--in-channels): {type(error).__name__}: {error}') from error
        network_stages = find_stages(trace)
        found, network_notes = network_features(trace, network_stages,
                                                network.role)
        stages.append(network_stages)
        features.append(found)
        notes.extend(network_notes)
    t_features, s_features = features
    shared = [size for size in t_features if size in s_features]
    report = PositionReport(networks[0], networks[1],
                            (1, in_channels, height, width), stages[0],
                            stages[1], [], notes)
    if not shared:
        raise PositionError(
            'The teacher and the student have no stage of equal spatial size '
            f'for a {format_size((height, width))} input (teacher stages: '
            f'{format_sizes(t_features)}; student stages: '
            f'{format_sizes(s_features)}), '
            'so MGD has no position to distil. MGD needs student and teacher '
            'features of the same H x W.')
    for role, mine, other, other_role in (('teacher', t_features, s_features,
                                           'student'),
                                          ('student', s_features, t_features,
                                           'teacher')):
        unmatched = [size for size in mine if size not in other]
        if unmatched:
            notes.append(f'{role} stages at {format_sizes(unmatched)}: the '
                         f'{other_role} has no stage of that size; not '
                         'distilled.')
    if num_positions is not None:
        if not 1 <= num_positions <= len(shared):
            raise PositionError(
                f'--num-positions {num_positions}: the pair has '
                f'{len(shared)} positions ({format_sizes(shared)}).')
        dropped, shared = (shared[:len(shared) - num_positions],
                           shared[len(shared) - num_positions:])
        if dropped:
            notes.append(f'--num-positions {num_positions}: not distilled '
                         f'at {format_sizes(dropped)}.')
    factor = loss_factor_for(height, width)
    for k, size in enumerate(shared):
        t_feature, s_feature = t_features[size], s_features[size]
        if s_feature.channels > t_feature.channels:
            raise PositionError(
                f'At {format_size(size)} the student feature '
                f'{s_feature.recorder["source"]} has {s_feature.channels} '
                f'channels, more than the teacher feature '
                f'{t_feature.recorder["source"]} ({t_feature.channels}); '
                'MGD needs at most as many student as teacher channels. Use '
                'a wider teacher, or --num-positions to keep only the '
                'deeper positions.')
        if t_feature.margin_bn is None:
            raise PositionError(
                f'At {format_size(size)} the teacher feature '
                f'{t_feature.recorder["source"]} is not the output of a '
                'BatchNorm (plus a shortcut); MGD takes the teacher margins '
                'from that BatchNorm.')
        report.positions.append(
            MatchedPosition(size, t_feature, s_feature,
                            len(shared) - k - 1, factor))
    return report
