"""Loading a teacher checkpoint that must fit the teacher exactly.

MMEngine's ``load_checkpoint`` (what MMRazor's ``SingleTeacherDistill`` uses
for ``teacher_ckpt``) only logs missing and unexpected keys, so a checkpoint
of the wrong network leaves a randomly initialised teacher and the student
is distilled towards random features. :func:`load_teacher_checkpoint` stops
with the keys that differ instead.
"""
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...utils.state_dict import key_prefixes, read_state_dict

# How many keys of each kind an error message lists before "... and N more".
MAX_LISTED_KEYS = 20


class TeacherCheckpointError(ValueError):
    """Raised when a teacher checkpoint does not fit the teacher."""


def _listing(title: str, items: List[str]) -> List[str]:
    if not items:
        return []
    lines = [f'{title} ({len(items)}):']
    lines += [f'    {item}' for item in items[:MAX_LISTED_KEYS]]
    if len(items) > MAX_LISTED_KEYS:
        lines.append(f'    ... and {len(items) - MAX_LISTED_KEYS} more')
    return lines


def _compare(
        expected: Dict[str, torch.Tensor],
        given: Dict[str,
                    torch.Tensor]) -> Tuple[List[str], List[str], List[str]]:
    """Missing keys, unexpected keys and keys whose shapes differ."""
    # Checkpoints written before PyTorch 0.4.1 have no BatchNorm counters;
    # a missing counter restarts at 0, which only momentum=None BNs read.
    missing = [
        k for k in expected
        if k not in given and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        k for k in given
        if k in expected and given[k].shape != expected[k].shape
    ]
    return missing, unexpected, mismatched


def load_teacher_checkpoint(
        teacher: nn.Module,
        filename: str,
        prefix: Optional[str] = None,
        map_location: str = 'cpu',
        head_prefixes: Sequence[str] = ('head.', ),
) -> dict:
    """Load ``filename`` into ``teacher`` and check that it fits.

    Every parameter and buffer of ``teacher`` must come from the checkpoint
    with its shape, and the checkpoint must hold nothing else, except under
    ``head_prefixes`` (the classification head: MGD distils features only,
    so a head for other classes, or none, is a warning and the teacher's
    head keeps its initial weights).

    Args:
        teacher: the module to fill, e.g. the algorithm's teacher, or its
            ``backbone`` when only the backbone comes from the file.
        filename: a local path or anything MMEngine's ``CheckpointLoader``
            reads (URLs, ``open-mmlab://``).
        prefix: load only the checkpoint keys under this prefix, with the
            prefix removed (MMEngine's ``Pretrained(prefix=...)``
            convention), e.g. ``prefix='backbone.'`` loads a MoCo
            checkpoint's ``backbone.*`` into ``teacher.backbone``.
        map_location: where the loaded tensors go before being copied.
        head_prefixes: key prefixes (relative to ``teacher``) whose
            differences only warn.

    Returns:
        dict: the whole checkpoint (its ``meta`` included), as MMEngine's
        ``load_checkpoint`` returns it.

    Raises:
        TeacherCheckpointError: listing the missing and unexpected keys and
            the shape mismatches outside ``head_prefixes``, or the prefixes
            found when no key has ``prefix``.
    """
    checkpoint, state_dict = read_state_dict(filename, map_location)
    # Weights saved from a DDP-wrapped model.
    state_dict = {
        re.sub(r'^module\.', '', k): v
        for k, v in state_dict.items()
    }
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        selected = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not selected:
            raise TeacherCheckpointError(
                f'Teacher checkpoint {filename} has no key under prefix '
                f'{prefix!r}; its keys start with {key_prefixes(state_dict)}.')
        state_dict = selected

    expected = teacher.state_dict()
    missing, unexpected, mismatched = _compare(expected, state_dict)

    def in_head(key):
        return key.startswith(tuple(head_prefixes))

    shapes = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)}, teacher '
        f'{tuple(expected[k].shape)}' for k in mismatched
    ]
    problems = (
        _listing('missing keys', [k for k in missing if not in_head(k)]) +
        _listing('unexpected keys', [k
                                     for k in unexpected if not in_head(k)]) +
        _listing('shape mismatches',
                 [s for k, s in zip(mismatched, shapes) if not in_head(k)]))
    where = f'{filename}' + (f' (keys under {prefix!r})' if prefix else '')
    if problems:
        raise TeacherCheckpointError(
            f'Teacher checkpoint {where} does not fit the teacher model:\n  ' +
            '\n  '.join(problems) + '\n  The checkpoint\'s keys start with '
            f'{key_prefixes(state_dict)}, the teacher\'s with '
            f'{key_prefixes(expected)}.')

    head_notes = (
        _listing('missing keys', [k for k in missing if in_head(k)]) +
        _listing('unexpected keys', [k for k in unexpected if in_head(k)]) +
        _listing('shape mismatches',
                 [s for k, s in zip(mismatched, shapes) if in_head(k)]))
    if head_notes:
        warnings.warn(
            f'Teacher checkpoint {where}: the classification head differs; '
            'the teacher keeps its initial head (MGD uses only its '
            'features):\n  ' + '\n  '.join(head_notes), UserWarning)

    skipped = set(mismatched)
    loadable = {
        k: v
        for k, v in state_dict.items() if k in expected and k not in skipped
    }
    teacher.load_state_dict(loadable, strict=False)
    # Keep BaseModule.init_weights (called by the runner before training)
    # from overwriting the loaded weights.
    teacher._is_init = True
    return checkpoint
