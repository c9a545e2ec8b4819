"""Checks on a config that fail before any model or data is built.

MMEngine only notices a missing checkpoint or data root when it reaches it
(after building the model, sometimes after the first epoch for a validation
set), and MMPretrain's MoCo a queue length that the global batch does not
divide when it first fills the queue. :func:`check_config` walks the config
once and reports every such problem at launch, naming the config key.
"""
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from .dataset_files import dataset_file_problems, downloads_itself
from .state_dict import key_prefixes, read_state_dict

# Keys whose value is a checkpoint file.
CHECKPOINT_KEYS = ('load_from', 'teacher_ckpt', 'checkpoint', 'pretrained')
# A path with one of these prefixes is fetched by MMEngine, not read locally.
REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'pavi://', 'open-mmlab://',
                   'openmmlab://', 'torchvision://', 'modelzoo://', 'mmcls://',
                   'mmpretrain://')

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
    return isinstance(
        path, str) and bool(path) and not path.startswith(REMOTE_PREFIXES)


def _is_pretrained_init(init_type) -> bool:
    """Whether an ``init_cfg`` type is MMEngine's ``Pretrained``: by its
    registered name, with or without a scope (``'mmengine.Pretrained'``),
    or the class or a subclass (``Config.to_dict`` turns a class into its
    import path)."""
    from mmengine.model.weight_init import PretrainedInit
    from mmengine.utils import get_object_from_string
    if isinstance(init_type, str):
        if init_type.rsplit('.', 1)[-1] == 'Pretrained':
            return True
        init_type = get_object_from_string(init_type)
    return isinstance(init_type, type) and issubclass(init_type,
                                                      PretrainedInit)


def _checkpoint_problems(tree: dict) -> List[str]:
    problems = []
    for key_path, node in _walk(tree):
        if not isinstance(node, dict):
            continue
        for key in CHECKPOINT_KEYS:
            value = node.get(key)
            # A boolean `pretrained` selects torchvision-style weights.
            if not _is_local(value):
                continue
            if key == 'checkpoint' and not _is_pretrained_init(
                    node.get('type')):
                continue
            if not osp.isfile(osp.expanduser(value)):
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
            f'{key_path}: {problem}' for problem in dataset_file_problems(node)
        ]
    return problems


def launch_world_size(launcher: Optional[str]) -> int:
    """The number of processes a run started with ``launcher`` will have,
    from the variables its launcher sets (1 when it sets none)."""
    variable = dict(
        pytorch='WORLD_SIZE', slurm='SLURM_NTASKS',
        mpi='OMPI_COMM_WORLD_SIZE').get(launcher or 'none')
    try:
        return max(1, int(os.environ.get(variable, 1))) if variable else 1
    except ValueError:
        return 1


def _queue_problems(tree: dict, world_size: int) -> List[str]:
    """A MoCo queue (``model.queue_len``) takes the keys of every process's
    batch at once, so it must hold a whole number of global batches, and
    every batch must be full."""
    model, loader = tree.get('model'), tree.get('train_dataloader')
    if not (isinstance(model, dict) and isinstance(loader, dict)
            and 'queue_len' in model):
        return []
    queue_len, batch_size = model['queue_len'], loader.get('batch_size')
    if not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in (queue_len, batch_size)):
        return []  # the model's own checks name a bad value
    problems = []
    global_batch = batch_size * world_size
    if queue_len % global_batch:
        problems.append(
            f'model.queue_len: {queue_len} is not a multiple of the global '
            f'batch size {global_batch} (train_dataloader.batch_size='
            f'{batch_size} x {world_size} process(es))')
    if not loader.get('drop_last', False):
        problems.append(
            'train_dataloader.drop_last: must be True with a MoCo queue '
            '(model.queue_len): a smaller last batch would not fill the '
            'queue evenly')
    return problems


def check_config(cfg: Config,
                 sections: Optional[Sequence[str]] = None,
                 world_size: Optional[int] = None):
    """Raise :class:`ConfigCheckError` naming every missing checkpoint file
    and data root/annotation file that ``cfg`` refers to; for the
    MMPretrain datasets whose files are known (FashionMNIST/MNIST, CUB,
    ImageNet and CustomDataset), the files or image folders missing under
    an existing data root (:func:`dataset_file_problems`); and a MoCo queue
    length that the global batch does not divide.

    Args:
        cfg: the merged config.
        sections: the top-level keys to check (e.g. only ``model``,
            ``load_from`` and ``test_dataloader`` for testing);
            :data:`RUNNER_SECTIONS` by default.
        world_size: the number of training processes; by default what the
            launcher in ``cfg.launcher`` says (:func:`launch_world_size`).

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
    if world_size is None:
        world_size = launch_world_size(cfg.get('launcher'))
    problems = (
        _checkpoint_problems(tree) + _dataset_problems(tree) +
        _queue_problems(tree, world_size))
    if problems:
        raise ConfigCheckError('Invalid config:\n  ' + '\n  '.join(problems))


def use_checkpoint_teacher(cfg: Config, checkpoint: str) -> bool:
    """For evaluating ``checkpoint`` with a distillation config: do not load
    ``model.teacher_ckpt`` when ``checkpoint`` holds the teacher.

    MMRazor's ``SingleTeacherDistill`` loads ``teacher_ckpt`` when it is
    built, although the runner then loads the whole algorithm, teacher
    included, from ``checkpoint``. If ``checkpoint`` has ``teacher.*`` keys,
    ``cfg.model.teacher_ckpt`` is set to None, so the training-time teacher
    file need not exist any more.

    Returns:
        bool: whether ``teacher_ckpt`` was dropped.

    Raises:
        ConfigCheckError: if ``checkpoint`` holds no teacher and
            ``teacher_ckpt`` is a local file that does not exist.
    """
    model = cfg.get('model')
    if not isinstance(model, dict) or not model.get('teacher_ckpt'):
        return False
    if _is_local(checkpoint) and not osp.isfile(osp.expanduser(checkpoint)):
        return False  # check_config reports load_from
    _, state_dict = read_state_dict(checkpoint)
    teacher_ckpt = model['teacher_ckpt']
    if any(key.startswith('teacher.') for key in state_dict):
        model['teacher_ckpt'] = None
        print_log(
            f'The teacher weights come from {checkpoint}; '
            f'model.teacher_ckpt ({teacher_ckpt}) is not read.',
            logger='current')
        return True
    if _is_local(teacher_ckpt) and not osp.isfile(
            osp.expanduser(teacher_ckpt)):
        raise ConfigCheckError(
            f'Invalid config:\n  model.teacher_ckpt: checkpoint file '
            f'{teacher_ckpt!r} does not exist, and {checkpoint} holds no '
            'teacher weights to use instead (no teacher.* keys; its keys '
            f'start with {key_prefixes(state_dict)}).')
    return False
