"""Exporting the student of a distillation checkpoint as a plain MMPretrain
model: its weights and a config that MMPretrain's own tools read.

An MMRazor distillation checkpoint (``SingleTeacherDistill``,
``MatchingGuidedDistillation``) holds the student under ``architecture.``,
next to the teacher, the distiller (MGD's BatchNorm connectors and matching
buffers) and the training state. A ``MoCoMGD`` checkpoint holds the
student MoCo at the top level, beside ``teacher_backbone.*`` and the
distiller. :func:`export_student` keeps only the student and writes, beside
it, a config of the student alone built from the distillation config.
"""
import copy
import io
import os.path as osp
from collections import OrderedDict
from typing import Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config

from .state_dict import key_prefixes, read_state_dict

STUDENT_PREFIX = 'architecture.'
# A MoCoMGD checkpoint: the student MoCo at the top level, beside these.
MOCO_MGD_TEACHER_PREFIX = 'teacher_backbone.'
MOCO_MGD_ONLY = (MOCO_MGD_TEACHER_PREFIX, 'distiller.', 'matching_epoch')
# MoCoMGD arguments that are not ConfigurableMoCo's.
MOCO_MGD_ARGS = ('teacher_backbone', 'teacher_ckpt', 'distiller')
# The top-level config keys the student config takes over as they are.
EVALUATION_KEYS = ('val_dataloader', 'val_evaluator', 'test_dataloader',
                   'test_evaluator', 'env_cfg', 'log_level')
LOOP_KEYS = ('val_cfg', 'test_cfg')


def _is_moco_mgd(state_dict: dict) -> bool:
    return any(key.startswith(MOCO_MGD_TEACHER_PREFIX) for key in state_dict)


def student_state_dict(state_dict: dict,
                       source: str = 'the checkpoint') -> OrderedDict:
    """The student's entries of a distillation ``state_dict``: the
    ``architecture.*`` ones with that prefix removed (MMRazor), or, in a
    ``MoCoMGD`` checkpoint, all but the teacher backbone, the distiller and
    the matching epoch (the student MoCo: backbone, neck, momentum encoder,
    queue).

    Raises:
        ValueError: naming the key prefixes found, if there is neither.
    """
    if not any(key.startswith(STUDENT_PREFIX)
               for key in state_dict) and _is_moco_mgd(state_dict):
        return OrderedDict((key, value) for key, value in state_dict.items()
                           if not key.startswith(MOCO_MGD_ONLY))
    student = OrderedDict((key[len(STUDENT_PREFIX):], value)
                          for key, value in state_dict.items()
                          if key.startswith(STUDENT_PREFIX))
    if not student:
        raise ValueError(
            f'{source} is not a distillation checkpoint: its state_dict has '
            f'no {STUDENT_PREFIX!r} keys (the student of an MMRazor '
            f'algorithm) and no {MOCO_MGD_TEACHER_PREFIX!r} keys (MoCoMGD). '
            f'Its keys start with {key_prefixes(state_dict)}.')
    return student


def moco_student_config(cfg: Config) -> Config:
    """The student MoCo of a ``MoCoMGD`` config, as a plain MMPretrain
    ``MoCo`` config (MMEngine's EMA momentum ``1 - m``), or a
    ``ConfigurableMoCo`` one when m is 0 or 1, which MMPretrain's MoCo
    refuses. Shuffled BN, a training-only choice, is dropped from the
    former. The config holds ``model``, ``default_scope`` and, for
    ``ConfigurableMoCo``, ``custom_imports`` of the plugin.
    """
    tree = cfg.to_dict()
    model = copy.deepcopy(tree['model'])
    for key in MOCO_MGD_ARGS:
        model.pop(key, None)
    m = float(model.pop('encoder_momentum', 0.999))
    preprocessor = model.get('data_preprocessor') or tree.get(
        'data_preprocessor')
    if preprocessor:
        model['data_preprocessor'] = preprocessor
    student = dict(default_scope='mmpretrain', model=model)
    if 0 < m < 1:
        model.pop('shuffle_bn', None)
        model.update(type='MoCo', momentum=1 - m)
    else:
        model.update(type='ConfigurableMoCo', encoder_momentum=m)
        student['custom_imports'] = dict(
            imports=['mgd_plugin'], allow_failed_imports=False)
    for key in ('env_cfg', 'log_level'):
        if key in tree:
            student[key] = copy.deepcopy(tree[key])
    return Config(student)


def _strip_scope(node, scope: str):
    """Drop ``_scope_=scope`` and the ``scope.`` prefix of ``type`` names
    under ``node``: the student config has ``default_scope=scope``, and
    MMPretrain finds some transforms by their bare name (its inferencer
    removes ``LoadImageFromFile`` from the test pipeline by name)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == '_scope_' and value == scope:
                continue
            if key == 'type' and isinstance(
                    value, str) and value.startswith(scope + '.'):
                value = value[len(scope) + 1:]
            out[key] = _strip_scope(value, scope)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_strip_scope(value, scope) for value in node)
    return node


def _resolve_cfg_path(architecture: dict) -> Tuple[dict, str]:
    """An MMRazor ``architecture=dict(cfg_path='pkg::file.py', ...)``
    written out as the model config of that file, and the package's
    scope."""
    from mmengine.hub import get_config

    extra = dict(architecture)
    cfg_path = extra.pop('cfg_path')
    extra.pop('pretrained', None)
    scope = cfg_path.split('::')[0]
    cfg = get_config(cfg_path)
    model = cfg.model.to_dict()
    if 'data_preprocessor' in cfg:
        model['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    # MMRazor passes the other keys as default arguments of the build.
    for key, value in extra.items():
        model.setdefault(key, value)
    return model, scope


def _student_preprocessor(preprocessor: dict, model_type: str) -> dict:
    """The algorithm's data preprocessor, for the student alone.

    ``ImageClassifier`` passes ``batch_augments`` to its preprocessor, which
    MMEngine's ``ImgDataPreprocessor`` does not take; MMPretrain's
    ``ClsDataPreprocessor`` normalises the same way.
    """
    preprocessor = dict(preprocessor)
    kind = str(preprocessor.get('type', '')).split('.')[-1]
    if kind != 'ImgDataPreprocessor' or model_type != 'ImageClassifier':
        return preprocessor
    converted = dict(type='ClsDataPreprocessor')
    for key in ('mean', 'std', 'pad_size_divisor', 'pad_value'):
        if key in preprocessor:
            converted[key] = preprocessor[key]
    converted['to_rgb'] = bool(
        preprocessor.get('bgr_to_rgb', False)
        or preprocessor.get('rgb_to_bgr', False))
    return converted


def _plain_loop(loop: dict) -> dict:
    """A val/test loop config without MMRazor's distillation loops (which
    also evaluate the teacher): MMEngine's default loop of that kind."""
    from mmpretrain.registry import LOOPS

    loop = dict(loop)
    kind = loop.get('type')
    if isinstance(kind, str) and LOOPS.get(kind.split('.')[-1]) is None:
        loop.pop('type')
    return loop


def student_config(cfg: Config) -> Config:
    """A plain MMPretrain config of the student of a distillation config.

    It holds ``model`` (``model.architecture`` with the algorithm's data
    preprocessor), the val/test dataloaders, evaluators and loops, and
    ``default_scope`` set to the student's scope, so that
    ``mmpretrain.get_model``, ``ImageClassificationInferencer`` and
    ``tools/test.py`` build the student from it. For a ``MoCoMGD``
    config: :func:`moco_student_config`.

    Raises:
        ValueError: if ``cfg`` has no ``model.architecture``.
    """
    tree = cfg.to_dict()
    model = tree.get('model')
    if isinstance(model, dict) and str(model.get('type',
                                                 '')).endswith('MoCoMGD'):
        return moco_student_config(cfg)
    if not isinstance(model, dict) or not isinstance(
            model.get('architecture'), dict):
        raise ValueError('Not a distillation config: it has no '
                         'model.architecture (the student).')
    architecture = copy.deepcopy(model['architecture'])
    scope = None
    if 'cfg_path' in architecture and 'type' not in architecture:
        architecture, scope = _resolve_cfg_path(architecture)
    scope = architecture.pop('_scope_', None) or scope
    model_type = str(architecture.get('type', ''))
    if scope is None:
        # 'mmpretrain.ImageClassifier' under MMRazor's default scope.
        scope = model_type.split('.')[0] if '.' in model_type else (
            'mmpretrain')
    # What the distillation used: the algorithm's preprocessor, or the
    # config's top-level one that the runner gives the algorithm.
    preprocessor = model.get('data_preprocessor') or tree.get(
        'data_preprocessor')
    if preprocessor:
        architecture['data_preprocessor'] = _student_preprocessor(
            preprocessor,
            model_type.split('.')[-1])

    student = dict(default_scope=scope, model=architecture)
    for key in EVALUATION_KEYS:
        if key in tree:
            student[key] = copy.deepcopy(tree[key])
    for key in LOOP_KEYS:
        if key in tree:
            student[key] = _plain_loop(tree[key])
    imports = tree.get('custom_imports')
    if imports:
        modules = imports.get('imports', [])
        modules = [
            m for m in ([modules] if isinstance(modules, str) else modules)
            if m != 'mgd_plugin' and not m.startswith('mgd_plugin.')
        ]
        if modules:
            student['custom_imports'] = dict(imports, imports=modules)
    return Config(_strip_scope(student, scope))


def _plain(value):
    """``value`` in the types ``torch.load(weights_only=True)`` reads
    without an allow-list."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _check_fits(student_cfg: Config, state_dict: dict) -> None:
    """Build the student from its config and load the weights strictly, so
    that what is written is known to load."""
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings

    if 'custom_imports' in student_cfg:
        import_modules_from_strings(**student_cfg.custom_imports)
    with DefaultScope.overwrite_default_scope(student_cfg.default_scope):
        model = MODELS.build(copy.deepcopy(student_cfg.model))
    result = model.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            'The student weights do not fit model.architecture of the '
            f'distillation config: missing keys {result.missing_keys}, '
            f'unexpected keys {result.unexpected_keys}.')


def export_student(checkpoint: str,
                   out: str,
                   config: Optional[str] = None) -> Tuple[str, str]:
    """Write the student of a distillation checkpoint as an MMPretrain
    checkpoint ``out`` and its config beside it (``out`` with ``.py``).

    Args:
        checkpoint: an MMRazor distillation checkpoint.
        out: the student checkpoint to write.
        config: the distillation config; by default the one the runner
            stored in the checkpoint (``meta.cfg``).

    Returns:
        tuple: the paths of the student checkpoint and of its config.

    The checkpoint holds ``state_dict`` and ``meta`` (``dataset_meta`` for
    class names, the epoch and iteration, the source and the student
    config), in types that ``torch.load(weights_only=True)`` reads.
    """
    from mmengine.fileio import put

    config_out = osp.splitext(out)[0] + '.py'
    if config_out == out:
        raise ValueError(f'{out}: the student checkpoint needs a name that '
                         'does not end with .py (its config gets that name).')
    saved, state_dict = read_state_dict(checkpoint)
    weights = student_state_dict(state_dict, checkpoint)
    meta = saved.get('meta') or {}
    if config is not None:
        cfg = Config.fromfile(config)
    elif isinstance(meta.get('cfg'), str):
        cfg = Config.fromstring(meta['cfg'], file_format='.py')
    else:
        raise ValueError(f'{checkpoint} stores no config (meta.cfg); pass '
                         'the distillation config with --config.')
    student_cfg = student_config(cfg)
    _check_fits(student_cfg, weights)

    student_meta = {
        key: meta[key]
        for key in ('dataset_meta', 'epoch', 'iter', 'mmengine_version')
        if key in meta
    }
    student_meta.update(
        exported_from=str(checkpoint), cfg=student_cfg.pretty_text)
    buffer = io.BytesIO()
    torch.save({'meta': _plain(student_meta), 'state_dict': weights}, buffer)
    put(buffer.getvalue(), out)
    student_cfg.dump(config_out)
    return out, config_out
