"""Every MoCo config (configs/mgd_moco) loads, builds and trains one step;
the ImageNet recipes are the issue's; the linear evaluation configs take
the student backbone of a pretraining checkpoint.

The datasets are not on the CI machine: the steps run on fake batches of
the config's input size (tests/test_moco_mgd_train.py runs the same code
path on image folders it writes).
"""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import HOOKS, MODELS
from mmpretrain.structures import DataSample

from conftest import REPO_ROOT
from mgd_plugin.models.selfsup import check_queue_length

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'mgd_moco')
CONFIGS = sorted(
    osp.relpath(path, REPO_ROOT)
    for path in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True))
PRETRAINING = [c for c in CONFIGS if '/benchmarks/' not in c]
LINEAR = [c for c in CONFIGS if '/benchmarks/' in c]
# (channels, side) of the fake inputs per dataset.
INPUTS = {'fashion-mnist': (1, 28), 'in1k': (3, 64), 'stl10': (3, 64)}
SEED_MATCHING_EPOCHS = [1, 2, 3, 6, 9, 15, 26, 43, 74, 126]


def load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


def build(cfg):
    model_cfg = copy.deepcopy(cfg.model)
    # Nothing can be downloaded here, and the Fashion-MNIST teacher is a
    # file the recipe's first command writes.
    model_cfg.pop('teacher_ckpt', None)
    if 'data_preprocessor' in cfg:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def fake_images(path, num=2):
    channels, side = next(v for k, v in INPUTS.items() if k in path)
    generator = torch.Generator().manual_seed(0)
    return torch.randint(
        0,
        256, (num, channels, side, side),
        dtype=torch.uint8,
        generator=generator)


def optim(model):
    return OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.01))


def test_every_config_is_listed():
    assert len(PRETRAINING) == 7 and len(LINEAR) == 6
    assert all(any(key in path for key in INPUTS) for path in CONFIGS)


@pytest.mark.parametrize('path', PRETRAINING)
def test_pretraining_config_builds_and_trains_one_step(path):
    cfg = load(path)
    model = build(cfg)
    mgd = 'mgd' in osp.basename(path)
    assert type(model).__name__ == ('MoCoMGD' if mgd else 'ConfigurableMoCo')
    hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h.type == 'MatchingUpdateHook'
    ]
    if mgd:
        assert len(hooks) == 1, 'an MGD config needs its MatchingUpdateHook'
        hook = HOOKS.build(copy.deepcopy(hooks[0]))
        assert hook.dataloader_cfg['collate_fn']['type'] == 'default_collate'
        batch = dict(inputs=fake_images(path), data_samples=None)
        model.matching_pass([batch], show_progress=False, epoch=1)
        assert model.matching_installed
    else:
        assert not hooks
    model.train()
    data = dict(
        inputs=[fake_images(path), fake_images(path)], data_samples=None)
    log_vars = model.train_step(data, optim(model))
    assert torch.isfinite(log_vars['loss_contrastive'])
    if mgd:
        positions = len(cfg.model.distiller.positions.student)
        assert sum(k.startswith('distill.loss_mgd')
                   for k in log_vars) == positions
    # The queue takes whole global batches of the recipe.
    world_size = 8 if '8xb32' in path else 1
    check_queue_length(model.queue_len, cfg.train_dataloader.batch_size,
                       world_size)
    assert cfg.train_dataloader.drop_last


@pytest.mark.parametrize('student', ['resnet18', 'resnet34'])
def test_imagenet_recipes_are_the_seeds(student):
    mgd = load(f'configs/mgd_moco/mocov2-mgd_resnet50-{student}'
               '_8xb32-coslr-200e_in1k.py')
    alone = load(f'configs/mgd_moco/mocov2_{student}_8xb32-coslr-200e_in1k.py')
    for cfg in (mgd, alone):
        assert cfg.train_dataloader.batch_size == 32
        assert cfg.optim_wrapper.optimizer.lr == 0.03
        assert cfg.param_scheduler[0].type == 'CosineAnnealingLR'
        assert cfg.train_cfg.max_epochs == 200
        assert cfg.model.head.temperature == 0.2
        assert cfg.model.queue_len == 65536
        assert cfg.model.encoder_momentum == 0.999
        assert cfg.model.backbone.depth == int(student[len('resnet'):])
    assert mgd.model.teacher_backbone.depth == 50
    assert mgd.model.teacher_ckpt.endswith(
        'mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-b6d23c86.pth')
    assert mgd.custom_hooks[0].epochs == SEED_MATCHING_EPOCHS
    # The same student with and without MGD.
    for key in ('backbone', 'neck', 'head'):
        assert mgd.model[key] == alone.model[key]


@pytest.mark.parametrize('path', LINEAR)
def test_linear_config_freezes_the_backbone_and_trains_the_head(path):
    cfg = load(path)
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    model = build(cfg)
    model.train()
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = model.head.fc.weight.clone()
    images = fake_images(path, 4)
    data = dict(
        inputs=list(images.unbind(0)),
        data_samples=[DataSample().set_gt_label(k) for k in range(4)])
    log_vars = model.train_step(data, optim(model))
    assert torch.isfinite(log_vars['loss'])
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone[key]), key
    assert not torch.equal(model.head.fc.weight, head)


@pytest.mark.parametrize('path', LINEAR)
def test_linear_config_points_at_a_pretraining_of_its_backbone(path):
    """The default checkpoint is what a shipped pretraining config writes,
    and that pretraining's backbone is this config's."""
    cfg = load(path)
    checkpoint = cfg.model.backbone.init_cfg.checkpoint
    work_dir, epoch = checkpoint.split('/')[1:3]
    pretraining = load(f'configs/mgd_moco/{work_dir}.py')
    assert epoch == f'epoch_{pretraining.train_cfg.max_epochs}.pth'
    for key in ('type', 'depth', 'stem_channels', 'base_channels',
                'in_channels'):
        assert cfg.model.backbone.get(key) == pretraining.model.backbone.get(
            key), key


FM_MOCO = 'configs/mgd_moco/{}_fashion-mnist-10k.py'


def test_fashion_mnist_moco_recipe_is_the_classification_recipes():
    """The MoCo-v2 comparison on Fashion-MNIST: student alone and with MGD
    share everything but the distillation; the teacher and student
    networks, the training images and the MGD settings are the
    classification recipe's; the MGD student reads the teacher from where
    the teacher's pretraining writes it."""
    teacher = load(FM_MOCO.format('mocov2_resnet18-w16_10e'))
    alone = load(FM_MOCO.format('mocov2_resnet18-w4_10e'))
    mgd = load(FM_MOCO.format('mocov2-mgd_resnet18-w16-w4_10e'))
    for key in ('backbone', 'neck', 'head', 'queue_len', 'feat_dim',
                'encoder_momentum', 'shuffle_bn'):
        assert mgd.model[key] == alone.model[key], key
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler',
                'train_dataloader', 'randomness'):
        assert mgd[key] == alone[key] == teacher[key], key
    assert mgd.model.teacher_backbone == teacher.model.backbone
    assert mgd.model.teacher_ckpt == (
        'work_dirs/mocov2_resnet18-w16_10e_fashion-mnist-10k/'
        f'epoch_{teacher.train_cfg.max_epochs}.pth')

    classification = load('configs/mgd/'
                          'mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py')
    student_cls = load(
        'configs/fashion_mnist/resnet18-w4_10e_fashion-mnist-10k.py')
    teacher_cls = load(
        'configs/fashion_mnist/resnet18-w16_10e_fashion-mnist-10k.py')
    for moco, cls in ((alone, student_cls), (teacher, teacher_cls)):
        backbone = dict(moco.model.backbone)
        assert backbone.pop('zero_init_residual') is False
        assert backbone == cls.model.backbone
        # Pretraining reads the classification recipe's training images.
        images = dict(moco.train_dataloader.dataset)
        expected = dict(cls.train_dataloader.dataset)
        assert images.pop('dataset').pop('pipeline') != expected.pop(
            'dataset').pop('pipeline')
        assert images == expected
    # The classification MGD's positions, named inside the backbones, its
    # stage weights and loss factor.
    positions = mgd.model.distiller.positions
    weights = [w / positions.loss_factor for w in positions.loss_weight]
    for k, expected in enumerate(classification.model.distiller.positions):
        for side in ('student', 'teacher'):
            ours = dict(positions[side][k])
            theirs = dict(expected[side])
            theirs['source'] = theirs['source'][len('backbone.'):]
            if 'margin_bn' in theirs:
                theirs['margin_bn'] = theirs['margin_bn'][len('backbone.'):]
            assert ours == theirs
        assert weights[k] == pytest.approx(expected.loss_weight)
    hook = mgd.custom_hooks[0]
    expected_hook = classification.custom_hooks[0]
    assert (hook.interval, hook.num_samples) == (expected_hook.interval,
                                                 expected_hook.num_samples)
    assert hook.dataloader.dataset == expected_hook.dataloader.dataset
