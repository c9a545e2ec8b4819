"""Build the teacher or student network of a config, for the position
finder: an MMPretrain classifier or backbone config, or the ``teacher`` /
``architecture`` of a distillation config. No weights are loaded."""
import os.path as osp
from dataclasses import dataclass
from typing import Union

from mmengine.config import Config, ConfigDict
from torch import nn

from .position_report import Network, PositionError


def load_config(path: str) -> Config:
    """Read a config file; ``package::dir/file.py`` names a config that an
    installed OpenMMLab package ships (``mmpretrain::resnet/...``)."""
    if '::' in path:
        import mmengine.utils as mmengine_utils
        package, relative = path.split('::', 1)
        if not mmengine_utils.is_installed(package):
            raise PositionError(f'{path}: package {package!r} is not '
                                'installed.')
        path = osp.join(
            mmengine_utils.get_installed_path(package), '.mim', 'configs',
            relative)
    if not osp.isfile(path):
        raise PositionError(f'config file {path} does not exist.')
    return Config.fromfile(path)


@dataclass
class NetworkConfig:
    """A network's model dict and where it came from."""
    name: str  # the config file
    key: str  # where in it: 'model', 'model.teacher', 'model.architecture'
    model: ConfigDict

    @property
    def in_channels(self) -> int:
        """The image channels the backbone declares (3 if none)."""
        backbone = self.model.get('backbone', self.model)
        return int(backbone.get('in_channels', 3))


def network_config(config: Union[str, Config],
                   role: str,
                   distillation_only: bool = False) -> NetworkConfig:
    """The model dict of ``role`` ('teacher' or 'student') in ``config``.

    An MMPretrain config gives its ``model``; an MMRazor distillation config
    (``model.architecture`` and ``model.teacher``) gives its ``teacher`` or
    its ``architecture`` (the student). With ``distillation_only`` any
    other config is an error.
    """
    name = config if isinstance(config, str) else (config.filename
                                                   or '<config>')
    if isinstance(config, str):
        config = load_config(config)
    if config.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**config.custom_imports)
    model = config.get('model')
    if not isinstance(model, dict):
        raise PositionError(f'{name}: no `model` dict.')
    if 'architecture' not in model:
        if distillation_only:
            raise PositionError(
                f'{name} is not a distillation config (no '
                '`model.architecture`), so it has no student; give a '
                'student config too.')
        return NetworkConfig(name, 'model', model)
    key = 'teacher' if role == 'teacher' else 'architecture'
    if not isinstance(model.get(key), dict):
        raise PositionError(
            f'{name}: a distillation config, but `model.{key}` (the '
            f'{role}) is not a model dict.')
    return NetworkConfig(name, f'model.{key}', model[key])


def build_network(config: NetworkConfig, role: str) -> Network:
    """Build the ``role`` network of ``config`` (no weights are loaded)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    try:
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(config.model)
    except Exception as error:
        raise PositionError(
            f'{config.name}: cannot build the {role} from `{config.key}`: '
            f'{type(error).__name__}: {error}') from error
    model.eval()
    # As MatchingGuidedDistillation does: an in-place activation would
    # overwrite the tensor it is given.
    for module in model.modules():
        if isinstance(getattr(module, 'inplace', None), bool):
            module.inplace = False
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, nn.Module):
        traced = backbone
    else:
        # A bare backbone config: it becomes the classifier's backbone.
        traced = model
    return Network(role, model, traced, 'backbone.',
                   f'{type(traced).__name__} ({config.name})')
