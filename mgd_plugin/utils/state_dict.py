"""Reading the ``state_dict`` of a checkpoint file and describing its keys."""
from collections import OrderedDict
from typing import Iterable, List, Tuple

from mmengine.runner.checkpoint import CheckpointLoader


def read_state_dict(filename: str,
                    map_location: str = 'cpu') -> Tuple[dict, OrderedDict]:
    """Read a checkpoint with MMEngine's loaders (local paths, URLs,
    ``open-mmlab://`` names; safe ``weights_only`` loading on torch >= 2.6
    through :mod:`mgd_plugin.compat`).

    Args:
        filename: the checkpoint file or URI.
        map_location: where the tensors go.

    Returns:
        tuple: the whole checkpoint, and its ``state_dict`` (the checkpoint
        itself for a file that holds only the weights, as the torchvision
        model zoo writes them).
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename} holds a {type(checkpoint).__name__}, '
                         'not a checkpoint dict with a state_dict.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{filename}: 'state_dict' is a "
                         f'{type(state_dict).__name__}, not a dict.')
    return checkpoint, OrderedDict(state_dict)


def key_prefixes(keys: Iterable[str]) -> List[str]:
    """The distinct first components of dotted keys, in order of first
    appearance: ``['architecture.', 'teacher.', 'matching_epoch']``.

    A key without a dot is listed whole.
    """
    prefixes = OrderedDict()
    for key in keys:
        head, dot, _ = key.partition('.')
        prefixes[head + dot] = None
    return list(prefixes)
