"""Checks on a config that fail before any model or data is built.

MMEngine only notices a missing checkpoint or data root when it reaches it
(after building the model, sometimes after the first epoch for a validation
set). :func:`check_config` walks the config once and reports every such
problem at launch, naming the config key.
"""
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from .dataset_files import dataset_file_problems, downloads_itself

# Keys whose value is a checkpoint file.
CHECKPOINT_KEYS = ('load_from', 'teacher_ckpt', 'checkpoint', 'pretrained')
# A path with one of these prefixes is fetched by MMEngine, not read locally.
REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'pavi://', 'open-mmlab://',
                   'openmmlab://', 'torchvision://', 'modelzoo://',
                   'mmcls://', 'mmpretrain://')


# The top-level keys the runner builds from. Other top-level keys are the
# config's own variables (``teacher_ckpt = ...`` above ``model``): their value
# was copied where it is used, and a ``--cfg-options`` override of the used
# copy leaves them stale.
RUNNER_SECTIONS = ('model', 'load_from', 'train_dataloader', 'val_dataloader',
                   'test_dataloader', 'default_hooks', 'custom_hooks')


class ConfigCheckError(ValueError):
    """Raised with every problem found in a config, one per line."""


def _walk(node, path: str = '') -> Iterator[Tuple[str, object]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _walk(value, f'{path}[{index}]')


def _is_local(path) -> bool:
    return isinstance(path, str) and bool(path) and not path.startswith(
        REMOTE_PREFIXES)


def _checkpoint_problems(tree: dict) -> List[str]:
    problems = []
    for key_path, node in _walk(tree):
        if not isinstance(node, dict):
            continue
        for key in CHECKPOINT_KEYS:
            value = node.get(key)
            if key == 'pretrained' and not isinstance(value, str):
                continue  # booleans select torchvision-style weights
            if key == 'checkpoint' and node.get('type') != 'Pretrained':
                continue
            if _is_local(value) and not osp.isfile(osp.expanduser(value)):
                where = f'{key_path}.{key}' if key_path else key
                problems.append(
                    f'{where}: checkpoint file {value!r} does not exist')
    return problems


def _dataset_problems(tree: dict) -> List[str]:
    problems = []
    for key_path, node in _walk(tree):
        # Every dataset, wherever it sits: the runner's dataloaders, a
        # hook's dataloader (the MGD matching pass), the members of a
        # wrapper dataset.
        if not (isinstance(node, dict) and 'type' in node and
                ({'data_root', 'ann_file', 'data_prefix'} & set(node))):
            continue
        data_root = node.get('data_root')
        if isinstance(data_root, str) and data_root and not osp.isdir(
                osp.expanduser(data_root)):
            if not downloads_itself(node):
                problems.append(f'{key_path}.data_root: directory '
                                f'{data_root!r} does not exist')
            continue
        ann_file = node.get('ann_file')
        if isinstance(ann_file, str) and ann_file:
            full = osp.join(data_root or '', ann_file)
            if not osp.isfile(osp.expanduser(full)):
                problems.append(f'{key_path}.ann_file: file {full!r} '
                                'does not exist')
                continue
        problems += [
            f'{key_path}: {problem}'
            for problem in dataset_file_problems(node)
        ]
    return problems


def check_config(cfg: Config, sections: Optional[Sequence[str]] = None):
    """Raise :class:`ConfigCheckError` naming every missing checkpoint file
    and data root/annotation file that ``cfg`` refers to, and, for the
    MMPretrain datasets whose files are known (FashionMNIST/MNIST, CUB,
    ImageNet and CustomDataset), the files or image folders missing under
    an existing data root (:func:`dataset_file_problems`).

    Args:
        cfg: the merged config.
        sections: the top-level keys to check (e.g. only ``model``,
            ``load_from`` and ``test_dataloader`` for testing);
            :data:`RUNNER_SECTIONS` by default.

    A ``load_from`` that ``resume=True`` will replace with the latest
    checkpoint of the work dir is still checked: it is what the user asked
    for.
    """
    if not isinstance(cfg, (Config, ConfigDict)):
        raise TypeError(f'expected a Config, got {type(cfg)}')
    tree = cfg.to_dict()
    if sections is None:
        sections = RUNNER_SECTIONS
    tree = {key: tree[key] for key in sections if key in tree}
    problems = _checkpoint_problems(tree) + _dataset_problems(tree)
    if problems:
        raise ConfigCheckError('Invalid config:\n  ' + '\n  '.join(problems))
