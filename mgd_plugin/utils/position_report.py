"""What the MGD position finder found, and its printed form.

:class:`PositionReport` holds both networks' stages and the chosen
positions; :func:`format_report` prints them as a ``positions=[...]`` block
in ``MatchingGuidedDistiller``'s compact form, with comments saying what
was found (the whole text is valid Python).
"""
import textwrap
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from torch import nn

from .feature_trace import BlockCall

REFERENCE_LOSS_FACTOR = 1e4  # the reference's, for 224 x 224 inputs
REFERENCE_SIZE = 224


class PositionError(ValueError):
    """The pair has no usable MGD positions; the message says why."""


def loss_factor_for(height: int, width: int) -> float:
    """The reference's 1e4 at 224 x 224, scaled by the input area."""
    return REFERENCE_LOSS_FACTOR * height * width / REFERENCE_SIZE**2


@dataclass
class Network:
    """A built network and what to call it in messages."""
    role: str  # 'teacher' or 'student'
    model: nn.Module  # what the recorders hook (a classifier)
    traced: nn.Module  # the part that is searched (its backbone)
    prefix: str  # module-name prefix of ``traced`` within ``model``
    description: str  # backbone type and config


@dataclass
class Stage:
    """Consecutive blocks whose outputs have the same (C, H, W)."""
    blocks: List[BlockCall]

    @property
    def channels(self) -> int:
        return self.blocks[-1].shape[0]

    @property
    def size(self) -> Tuple[int, int]:
        return self.blocks[-1].shape[1:]

    def describe(self) -> str:
        first, last = self.blocks[0].name, self.blocks[-1].name
        names = first if first == last else f'{first} .. {last}'
        return f'{format_size(self.size)}: {self.channels} ch, {names}'


@dataclass
class Feature:
    """The pre-activation tensor recorded for one stage of one network."""
    recorder: dict  # type, source[, record_idx]
    channels: int
    size: Tuple[int, int]
    margin_bn: Optional[str]  # None: no BatchNorm produced it
    stage: Stage
    note: Optional[str] = None  # why it is not the stage output itself

    def config(self, with_margin: bool) -> dict:
        cfg = dict(self.recorder, channels=self.channels)
        if with_margin:
            cfg['margin_bn'] = self.margin_bn
        return cfg


@dataclass
class MatchedPosition:
    """One MGD position: teacher and student features of one size."""
    size: Tuple[int, int]
    teacher: Feature
    student: Feature
    stage_weight_exponent: int  # the stage weight is 1 / 2**exponent
    loss_factor: float

    @property
    def loss_weight(self) -> float:
        return 1 / 2**self.stage_weight_exponent / self.loss_factor

    def config(self) -> dict:
        """The position in ``MatchingGuidedDistiller``'s compact form."""
        return dict(
            student=self.student.config(with_margin=False),
            teacher=self.teacher.config(with_margin=True),
            loss_weight=self.loss_weight)


@dataclass
class PositionReport:
    """Everything the finder found, and the positions it chose."""
    teacher: Network
    student: Network
    input_shape: Tuple[int, int, int, int]
    teacher_stages: List[Stage]
    student_stages: List[Stage]
    positions: List[MatchedPosition]
    notes: List[str] = field(default_factory=list)

    def configs(self) -> List[dict]:
        return [position.config() for position in self.positions]

    def format(self) -> str:
        return format_report(self)


def format_size(size: Sequence[int]) -> str:
    return 'x'.join(str(s) for s in size)


def format_sizes(sizes) -> str:
    return ', '.join(format_size(size) for size in sizes) or 'none'


def _comment(text: str, first: str = '# ', indent: str = '') -> List[str]:
    return textwrap.wrap(
        text,
        79,
        initial_indent=indent + first,
        subsequent_indent=indent + '#   ',
        break_long_words=False,
        break_on_hyphens=False)


def _loss_factor_expr(height: int, width: int) -> str:
    if (height, width) == (REFERENCE_SIZE, REFERENCE_SIZE):
        return '1e4'
    return f'(1e4 * {height} * {width} / {REFERENCE_SIZE}**2)'


def _dict_lines(name: str, cfg: dict, indent: str) -> List[str]:
    lines = [f'{indent}{name}=dict(']
    items = [f'{indent}    {key}={value!r}' for key, value in cfg.items()]
    lines.extend(item + ',' for item in items[:-1])
    lines.append(items[-1] + '),')
    return lines


def format_report(report: PositionReport) -> str:
    """The positions as a ready-to-paste ``positions=[...]`` block, with
    what was found as comments (valid Python as a whole)."""
    _, channels, height, width = report.input_shape
    lines = _comment(
        f'MGD positions from tools/analysis_tools/find_positions.py for a '
        f'{channels}-channel {format_size((height, width))} input. '
        f'Teacher: {report.teacher.description}. Student: '
        f'{report.student.description}.')
    used = {position.size: k for k, position in enumerate(report.positions)}
    for network, stages, side in ((report.teacher, report.teacher_stages,
                                   'teacher'),
                                  (report.student, report.student_stages,
                                   'student')):
        lines.append(f'# {network.role} stages (size: channels, blocks):')
        for stage in stages:
            feature = getattr(report.positions[used[stage.size]],
                              side) if stage.size in used else None
            mark = (f'  <- position {used[stage.size] + 1}'
                    if feature is not None and feature.stage is stage else '')
            lines.append(f'#   {stage.describe()}{mark}')
    for note in report.notes:
        lines.extend(_comment(note, '# - '))
    if report.notes:
        lines.append('#')
    lines.extend(
        _comment(
            'Position k of K is weighted 1 / 2**(K - k - 1) and divided by '
            'the loss factor 1e4 * H * W / 224**2 (the reference\'s 1e4 at '
            '224 px).'))
    lines.append('positions=[')
    factor = _loss_factor_expr(height, width)
    for position in report.positions:
        lines.append(f'    # {format_size(position.size)}: teacher '
                     f'{position.teacher.channels} ch, student '
                     f'{position.student.channels} ch')
        for feature in (position.teacher, position.student):
            if feature.note:
                lines.extend(_comment(feature.note, '# - ', ' ' * 4))
        lines.append('    dict(')
        lines.extend(
            _dict_lines('student', position.student.config(False), ' ' * 8))
        lines.extend(
            _dict_lines('teacher', position.teacher.config(True), ' ' * 8))
        exponent = position.stage_weight_exponent
        weight = '1' if exponent == 0 else f'1 / {2**exponent}'
        lines.append(f'        loss_weight={weight} / {factor}),')
    lines.append(']')
    return '\n'.join(lines) + '\n'
