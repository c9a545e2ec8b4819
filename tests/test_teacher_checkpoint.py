"""load_teacher_checkpoint, alone and as MatchingGuidedDistillation's
teacher_ckpt loader: a teacher checkpoint must fit the teacher."""
import copy
import os.path as osp
import warnings

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmrazor.registry import MODELS

from conftest import REPO_ROOT, save_model_checkpoint
from mgd_plugin.models.utils import (TeacherCheckpointError,
                                     load_teacher_checkpoint)

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'mgd_tiny_resnet.py')


def teacher_cfg(**backbone):
    cfg = copy.deepcopy(Config.fromfile(CONFIG).teacher)
    cfg.backbone.update(backbone)
    return cfg


def build_teacher(seed, cfg=None):
    torch.manual_seed(seed)
    return PRETRAIN_MODELS.build(teacher_cfg() if cfg is None else cfg)


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    """A trained-looking teacher: random weights and BN statistics."""
    teacher = build_teacher(seed=1)
    with torch.no_grad():
        for name, buffer in teacher.named_buffers():
            if name.endswith(('running_mean', 'running_var')):
                buffer.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    return save_model_checkpoint(teacher, str(path))


def saved_state(path):
    return torch.load(path, weights_only=True)['state_dict']


def build_algorithm(teacher_ckpt):
    cfg = copy.deepcopy(Config.fromfile(CONFIG).model)
    cfg.teacher_ckpt = str(teacher_ckpt)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def test_the_right_checkpoint_loads_exactly(teacher_file):
    algorithm = build_algorithm(teacher_file)
    saved = saved_state(teacher_file)
    loaded = algorithm.teacher.state_dict()
    assert loaded.keys() == saved.keys()
    for key in saved:
        assert torch.equal(loaded[key], saved[key]), key
    # The runner's init_weights must not overwrite it, and the margins
    # come from the loaded BatchNorm.
    assert algorithm.teacher._is_init
    bn = algorithm.teacher.backbone.layer4[2].bn3
    from mgd_plugin.models.utils import bn_margin
    torch.testing.assert_close(
        algorithm.distiller.connectors['mgd3_reducer'].margin, bn_margin(bn))


def test_a_different_depth_fails_at_build_listing_the_keys(tmp_path):
    # ResNet-101 layout: layer3 has 23 blocks where the teacher has 6.
    deeper = build_teacher(seed=0, cfg=teacher_cfg(depth=101))
    path = save_model_checkpoint(deeper, str(tmp_path / 'r101.pth'))
    with pytest.raises(TeacherCheckpointError) as error:
        build_algorithm(path)
    message = str(error.value)
    assert 'does not fit the teacher model' in message
    assert 'unexpected keys (' in message
    assert 'backbone.layer3.6.conv1.weight' in message
    assert 'missing keys' not in message

    # A shallower one: missing keys, and Bottleneck vs BasicBlock shapes.
    shallower = build_teacher(seed=0, cfg=teacher_cfg(depth=18))
    path = save_model_checkpoint(shallower, str(tmp_path / 'r18.pth'))
    with pytest.raises(TeacherCheckpointError) as error:
        build_algorithm(path)
    message = str(error.value)
    assert 'missing keys (' in message
    assert 'backbone.layer1.0.conv3.weight' in message
    assert ('backbone.layer1.0.conv1.weight: checkpoint (4, 4, 3, 3), '
            'teacher (4, 4, 1, 1)') in message


def test_a_different_head_builds_with_a_warning(teacher_file, tmp_path):
    other_head = teacher_cfg()
    other_head.head.num_classes = 10
    imagenet_like = build_teacher(seed=2, cfg=other_head)
    path = save_model_checkpoint(imagenet_like, str(tmp_path / 'head.pth'))
    with pytest.warns(UserWarning, match='classification head differs') as w:
        algorithm = build_algorithm(path)
    assert 'head.fc.weight: checkpoint (10, 128), teacher (3, 128)' in str(
        w[0].message)
    saved = saved_state(path)
    loaded = algorithm.teacher.state_dict()
    for key in saved:
        if key.startswith('backbone.'):
            assert torch.equal(loaded[key], saved[key]), key
    assert loaded['head.fc.weight'].shape == (3, 128)

    # No head at all (a backbone-only checkpoint) also only warns.
    backbone_only = {
        k: v
        for k, v in saved_state(teacher_file).items()
        if k.startswith('backbone.')
    }
    path = tmp_path / 'backbone_only.pth'
    torch.save({'state_dict': backbone_only}, path)
    with pytest.warns(UserWarning, match='missing keys'):
        build_algorithm(path)


def test_prefix_loads_the_keys_under_it(teacher_file, tmp_path):
    # A MoCo-style checkpoint: the backbone next to other networks.
    saved = saved_state(teacher_file)
    moco = {
        f'backbone.{k[len("backbone."):]}': v
        for k, v in saved.items() if k.startswith('backbone.')
    }
    moco.update({
        'encoder_k.0.conv1.weight': torch.zeros(1),
        'neck.mlp.0.weight': torch.zeros(1),
        'queue': torch.zeros(4, 2)
    })
    path = tmp_path / 'moco.pth'
    torch.save({'state_dict': moco}, path)

    teacher = build_teacher(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load_teacher_checkpoint(
            teacher.backbone, str(path), prefix='backbone.')
    for key, value in teacher.backbone.state_dict().items():
        assert torch.equal(value, saved[f'backbone.{key}']), key
    assert teacher.backbone._is_init

    # Without the prefix the other networks are unexpected keys.
    with pytest.raises(TeacherCheckpointError, match='encoder_k.0.conv1'):
        load_teacher_checkpoint(teacher, str(path))

    with pytest.raises(TeacherCheckpointError) as error:
        load_teacher_checkpoint(
            teacher.backbone, str(path), prefix='module.encoder_q')
    assert ("no key under prefix 'module.encoder_q.'; its keys start with "
            "['backbone.', 'encoder_k.', 'neck.', 'queue']") in str(
                error.value)


def test_ddp_prefix_is_removed(teacher_file, tmp_path):
    wrapped = {f'module.{k}': v for k, v in saved_state(teacher_file).items()}
    path = tmp_path / 'ddp.pth'
    torch.save({'state_dict': wrapped}, path)
    teacher = build_teacher(seed=4)
    load_teacher_checkpoint(teacher, str(path))
    for key, value in saved_state(teacher_file).items():
        assert torch.equal(teacher.state_dict()[key], value), key
