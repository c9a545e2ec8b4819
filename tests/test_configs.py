"""Every shipped top-level config loads, passes the launch checks, builds
its dataloaders, hooks and model, and trains one step.

Configs are found by globbing ``configs/`` (every ``.py`` outside
``_base_``), so a new config is covered without touching this file. The
datasets are replaced by stand-in data roots that the tests write in the
layout each dataset type reads (ImageNet list files, class folders for
``CustomDataset``, the official CUB files, Fashion-MNIST IDX files). Nothing
is downloaded: ``teacher_ckpt`` becomes None and ``init_cfg`` Pretrained is
never applied (the model is built, not initialised). The training step runs
on a fake batch of 64x64 images (28x28 for Fashion-MNIST), so that
ImageNet-size networks stay cheap on a CPU.
"""
import copy
import functools
import glob
import importlib.util
import os
import os.path as osp
import re
import struct

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, DefaultScope, init_default_scope
from mmengine.runner import Runner
from mmpretrain.datasets import CUB, MNIST, CustomDataset, ImageNet
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.structures import DataSample
from mmrazor.models.task_modules import RecorderManager
from mmrazor.registry import MODELS

from conftest import REPO_ROOT, write_image_folder
from mgd_plugin.datasets import MatchingSubsetSampler
from mgd_plugin.models.architectures.connectors import (AbsMaxPoolReducer,
                                                        MaxPoolReducer,
                                                        RandomDropReducer,
                                                        SparseMatchReducer)
from mgd_plugin.utils import check_config
from mgd_plugin.utils.dataset_files import dataset_class

CONFIGS = sorted(
    osp.relpath(path, REPO_ROOT) for path in glob.glob(
        osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(path, REPO_ROOT).split(os.sep)
    # tests/test_moco_configs.py builds the self-supervised ones.
    and not path.startswith(osp.join(REPO_ROOT, 'configs', 'mgd_moco')))
# The paper's recipes: everything in configs/mgd but the Fashion-MNIST
# demonstration (which has its own folder of baselines).
RECIPES = [
    path for path in CONFIGS if path.startswith(osp.join('configs', 'mgd'))
    and 'fashion-mnist' not in osp.basename(path)
]
# <method>_<teacher>-<student>_<gpus>xb<batch>[-...]_<data>.py, or
# <network>_<gpus>xb<batch>_<data>.py for a network trained alone.
DISTILL_NAME = re.compile(r'^(?P<method>mgd-[a-z]+(?:-kd)?|kd|ofd)_'
                          r'(?P<teacher>resnet\d+)-(?P<student>[a-z0-9-]+?)_'
                          r'(?P<rest>.+)$')
REDUCERS = [
    AbsMaxPoolReducer, RandomDropReducer, MaxPoolReducer, SparseMatchReducer
]
TRAIN_TOOL = osp.join(REPO_ROOT, 'tools', 'train.py')


@functools.lru_cache(maxsize=None)
def _parsed(path):
    # Resolving `mmpretrain::` bases reads MMPretrain's metafiles: parse
    # each config once.
    return Config.fromfile(osp.join(REPO_ROOT, path))


def read_config(path):
    """A fresh copy of the config at ``path`` (relative to the repo)."""
    return copy.deepcopy(_parsed(path))


@functools.lru_cache(maxsize=None)
def _train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', TRAIN_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def load_config(path, cfg_options=()):
    """``path`` merged with ``--cfg-options`` exactly as tools/train.py
    does it."""
    tool = _train_tool()
    argv = [osp.join(REPO_ROOT, path)]
    if cfg_options:
        argv += ['--cfg-options', *cfg_options]
    return tool.merge_args(read_config(path), tool.parse_args(argv))


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    # The CPU machines are shared: two threads per process make a forward
    # pass several times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def method_of(path):
    name = osp.splitext(osp.basename(path))[0]
    match = DISTILL_NAME.match(name)
    return match.group('method') if match else None


# --------------------------------------------------------------------------
# Stand-in data roots
# --------------------------------------------------------------------------
def write_idx(path, array):
    # IDX: two zero bytes, type code 0x08 (unsigned byte), the number of
    # dimensions, the big-endian int32 sizes, then the data.
    header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim)
    header += struct.pack(f'>{array.ndim}i', *array.shape)
    with open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


class StandInData:
    """Writes, once per layout, tiny data where a dataset config reads."""

    def __init__(self, root):
        self.root = root
        self.made = set()

    def _once(self, key, write):
        if key not in self.made:
            write()
            self.made.add(key)

    def teacher_checkpoint(self):
        """A file where a local teacher checkpoint is expected (the model
        is built without loading it)."""
        path = osp.join(self.root, 'teacher.pth')
        self._once(path, lambda: open(path, 'wb').close())
        return path

    def root_for(self, node):
        """A data root with the files the dataset ``node`` reads, or None
        for a dataset type this test does not know."""
        cls = dataset_class(node.get('type'))
        if cls is None:
            return None
        if issubclass(cls, MNIST):
            root = osp.join(self.root, 'mnist')
            self._once(root, lambda: self._mnist(root, cls))
        elif issubclass(cls, CUB):
            root = osp.join(self.root, 'cub')
            self._once(root, lambda: self._cub(root))
        elif issubclass(cls, ImageNet):
            root = osp.join(self.root, 'imagenet')
            split = node.get('split') or 'train'
            self._once((root, split), lambda: self._imagenet(root, split))
        elif issubclass(cls, CustomDataset):
            root = osp.join(self.root, 'folders')
            prefix = node.get('data_prefix') or ''
            if isinstance(prefix, dict):
                prefix = prefix.get('img_path', '')
            folder = osp.join(root, prefix)
            self._once(
                folder,
                lambda: write_image_folder(folder, num_classes=3, per_class=2))
        else:
            return None
        return root

    @staticmethod
    def _mnist(root, cls):
        os.makedirs(root)
        rng = np.random.default_rng(0)
        # Two training images of every class (class-balanced subsets).
        for files, num in ((cls.train_list, 20), (cls.test_list, 4)):
            images, labels = (name.replace('.gz', '') for name, _ in files)
            write_idx(
                osp.join(root, images), rng.integers(0, 256, (num, 28, 28)))
            write_idx(osp.join(root, labels), np.arange(num) % 10)

    @staticmethod
    def _cub(root):
        # The official CUB_200_2011 layout: images/<class>/<file> and the
        # id-indexed lists, three images per split over two classes.
        write_image_folder(
            osp.join(root, 'images'), num_classes=2, per_class=3)
        files = sorted(
            osp.relpath(path, osp.join(root, 'images'))
            for path in glob.glob(osp.join(root, 'images', '*', '*.png')))
        lists = {
            name: []
            for name in ('images', 'image_class_labels', 'train_test_split')
        }
        for index, path in enumerate(files, 1):
            label = int(osp.dirname(path).split('_')[1])
            lists['images'].append(f'{index} {path}')
            lists['image_class_labels'].append(f'{index} {1 + label}')
            lists['train_test_split'].append(f'{index} {index % 2}')
        for name, lines in lists.items():
            with open(osp.join(root, f'{name}.txt'), 'w') as f:
                f.write('\n'.join(lines) + '\n')

    @staticmethod
    def _imagenet(root, split):
        # The list-file layout (ImageNet's class-folder layout needs 1000
        # folders): <split>/<file> plus meta/<split>.txt, classes in order.
        folder = osp.join(root, split)
        write_image_folder(folder, num_classes=3, per_class=2)
        os.makedirs(osp.join(root, 'meta'), exist_ok=True)
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            for path in sorted(glob.glob(osp.join(folder, '*', '*.png'))):
                label = int(osp.basename(osp.dirname(path)).split('_')[1])
                f.write(f'{osp.relpath(path, folder)} {label}\n')


def datasets_of(tree, path=''):
    """(key path, dataset config) for every dataset in a config tree."""
    if isinstance(tree, dict):
        files = {'data_root', 'data_prefix', 'ann_file'} & set(tree)
        if 'type' in tree and files and dataset_class(tree['type']):
            yield path, tree
        for key, value in tree.items():
            yield from datasets_of(value, f'{path}.{key}' if path else key)
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from datasets_of(value, f'{path}[{index}]')


@pytest.fixture(scope='module')
def stand_in(tmp_path_factory):
    return StandInData(str(tmp_path_factory.mktemp('stand_in_data')))


def point_at_stand_in(cfg, stand_in):
    """Point every dataset of ``cfg`` at stand-in data, in place."""
    found = []
    for key_path, node in wrappers_of(cfg._cfg_dict, 'ClassBalancedSubset'):
        # One image per class (two classes apart for a held-out part): the
        # stand-in data has two of each class.
        node['start'] = min(node.get('start', 0), 1)
        node['num_per_class'] = 1
    for key_path, node in datasets_of(cfg._cfg_dict):
        root = stand_in.root_for(node)
        assert root is not None, f'{key_path}: no stand-in data for ' \
            f'{node["type"]}; teach StandInData its layout'
        node['data_root'] = root
        # A wrapped dataset stands for the dataset of its loader.
        found.append(re.sub(r'(\.dataset)+$', '.dataset', key_path))
    return found


def wrappers_of(tree, type_name, path=''):
    """(key path, config) of every ``type_name`` node in a config tree."""
    if isinstance(tree, dict):
        if tree.get('type') == type_name:
            yield path, tree
        for key, value in tree.items():
            yield from wrappers_of(value, type_name,
                                   f'{path}.{key}' if path else key)
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from wrappers_of(value, type_name, f'{path}[{index}]')


def small_loader_cfg(loader_cfg):
    loader_cfg = copy.deepcopy(dict(loader_cfg))
    loader_cfg.update(num_workers=0, persistent_workers=False)
    # MMEngine's serialisation runs a full garbage collection per dataset;
    # what the dataset reads is the same without it.
    dataset = loader_cfg['dataset']
    while 'dataset' in dataset:  # a wrapper: the wrapped dataset loads
        dataset = dataset['dataset']
    dataset['serialize_data'] = False
    return loader_cfg


def small_loader(loader_cfg):
    return Runner.build_dataloader(small_loader_cfg(loader_cfg), seed=0)


# --------------------------------------------------------------------------
# Fake batches and model building
# --------------------------------------------------------------------------
def fake_batch(cfg, num=2):
    preprocessor = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor')
    channels = len(preprocessor['mean'])
    side = 28 if channels == 1 else 64
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(
        0,
        256, (num, channels, side, side),
        dtype=torch.uint8,
        generator=generator)
    return dict(
        inputs=list(images.unbind(0)),
        data_samples=[DataSample().set_gt_label(k % 10) for k in range(num)])


def build_model(cfg):
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model
    if 'teacher_ckpt' in model_cfg:
        # Nothing is downloaded here, and the CUB and Fashion-MNIST teachers
        # are files the recipes' first commands write.
        model_cfg.teacher_ckpt = None
    torch.manual_seed(0)
    if model_cfg.get('_scope_') == 'mmrazor':
        return MODELS.build(model_cfg)
    # A network alone: the runner hands it the config's data preprocessor.
    model_cfg = dict(model_cfg)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    return PRETRAIN_MODELS.build(model_cfg)


def optimizer_for(model):
    return OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.01))


def check_ofd_teacher_features(model, data):
    """MMRazor's OFD records the teacher at a BatchNorm (the last BN of the
    stage's last block: bn3 of a Bottleneck, bn2 of a BasicBlock). The
    configs rely on MMPretrain adding the shortcut to that output in place:
    the recorded tensor must be the block's pre-ReLU sum, the input of its
    final ReLU call, which the MGD configs record."""
    recorders = model.distiller.teacher_recorders.recorders
    sums = {}
    for name, recorder in recorders.items():
        block, _, norm = recorder.source.rpartition('.')
        assert norm in ('bn2', 'bn3'), recorder.source
        sums[name] = dict(type='ModuleInputs', source=f'{block}.relu')
    with DefaultScope.overwrite_default_scope('mmrazor'):
        manager = RecorderManager(sums)
    manager.initialize(model.teacher)
    inputs = model.data_preprocessor(data, False)['inputs']
    model.eval()
    with torch.no_grad(), model.distiller.teacher_recorders, manager:
        model.teacher(inputs, None, mode='tensor')
    for name in recorders:
        recorded = model.distiller.get_record(name, from_student=False)
        # The block calls its one ReLU module last on the sum.
        relu_input = manager.get_recorder(name).data_buffer[-1][0]
        assert recorded.min() < 0, f'{name}: the record is post-ReLU'
        torch.testing.assert_close(recorded, relu_input, rtol=0, atol=0)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------
def test_configs_are_found_and_named():
    assert len(CONFIGS) >= 30, CONFIGS
    for path in CONFIGS:
        name = osp.basename(path)
        assert re.search(r'_(in1k|cub|fashion-mnist(-10k)?)\.py$', name), name
        if name.startswith(('mgd', 'kd_', 'ofd_')):
            assert method_of(path), f'{name}: not <method>_<t>-<s>_...'


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_and_trains_one_step(path, stand_in):
    method = method_of(path)
    options = ()
    reducer = None
    if method and method.startswith('mgd'):
        # Switch every position's reducer from the command line, as a user
        # would; the configs take turns with the four reducers.
        reducer = REDUCERS[CONFIGS.index(path) % len(REDUCERS)]
        options = (f'model.distiller.reducer.type={reducer.__name__}', )
    cfg = load_config(path, options)

    # The launch checks pass on the stand-in data (and a teacher checkpoint
    # that a recipe's first command would write).
    datasets = point_at_stand_in(cfg, stand_in)
    assert {'train_dataloader.dataset',
            'val_dataloader.dataset'} <= set(datasets)
    if str(cfg.model.get('teacher_ckpt')).startswith('work_dirs'):
        cfg.model.teacher_ckpt = stand_in.teacher_checkpoint()
    check_config(cfg)

    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        batch = next(iter(small_loader(cfg[loader])))
        assert len(batch['inputs']) > 0

    hooks = [HOOKS.build(hook) for hook in cfg.get('custom_hooks', [])]
    matching = [h for h in hooks if type(h).__name__ == 'MatchingUpdateHook']
    if method and method.startswith('mgd'):
        assert len(matching) == 1, 'an MGD config needs a MatchingUpdateHook'
        # The loader the hook builds (it replaces any configured sampler).
        hook = matching[0]
        hook.dataloader_cfg = small_loader_cfg(hook.dataloader_cfg)
        loader = hook._build_dataloader(seed=0)
        dataset = loader.dataset
        # Validation-style transforms: the same image twice is the same
        # tensor.
        torch.testing.assert_close(dataset[0]['inputs'], dataset[0]['inputs'])
        # A random subset of the whole list: a class-ordered list is not
        # matched on its first few classes.
        assert isinstance(loader.sampler, MatchingSubsetSampler)
        assert len(next(iter(loader))['inputs']) > 0
    else:
        assert not matching

    model = build_model(cfg)
    data = fake_batch(cfg)
    expected = {
        None: 'ImageClassifier',
        'kd': 'SingleTeacherDistill',
        'ofd': 'OverhaulFeatureDistillation',
    }.get(method, 'MatchingGuidedDistillation')
    assert type(model).__name__ == expected
    if reducer is not None:
        reducers = [
            model.distiller.reducer(p) for p in model.distiller.positions
        ]
        assert len(reducers) == len(cfg.model.distiller.positions)
        assert all(type(r) is reducer for r in reducers), reducers
        model.matching_pass([data], len(data['inputs']), show_progress=False)
        assert model.matching_installed

    model.train()
    log_vars = model.train_step(data, optimizer_for(model))
    assert torch.isfinite(log_vars['loss'])
    losses = {key for key in log_vars if key.startswith('distill.')}
    if reducer is not None:
        assert sum(key.startswith('distill.loss_mgd')
                   for key in losses) == len(model.distiller.positions)
    if method == 'ofd':
        assert losses == {f'distill.loss_ofd{k}' for k in range(len(losses))}
        check_ofd_teacher_features(model, data)
    if method in ('kd', ) or (method or '').endswith('-kd'):
        assert log_vars['distill.loss_kd'] > 0


@pytest.mark.parametrize(
    'path', [p for p in RECIPES if (method_of(p) or '').startswith('mgd')])
def test_mgd_configs_default_to_the_reducer_they_name(path):
    cfg = read_config(path)
    reducer = {
        'amp': 'AbsMaxPoolReducer',
        'rd': 'RandomDropReducer',
        'sp': 'MaxPoolReducer',
        'sm': 'SparseMatchReducer'
    }[method_of(path).split('-')[1]]
    assert cfg.model.distiller.reducer.type == reducer
    # A position naming its own reducer would ignore --cfg-options
    # model.distiller.reducer.type=...
    assert all('reducer' not in p for p in cfg.model.distiller.positions)


def sibling(path, name):
    other = osp.join(osp.dirname(path), name + '.py')
    assert osp.isfile(osp.join(REPO_ROOT, other)), \
        f'{path} has no companion {other}'
    return read_config(other)


SHARED = ('train_dataloader', 'val_dataloader', 'test_dataloader',
          'val_evaluator', 'optim_wrapper', 'param_scheduler', 'train_cfg',
          'auto_scale_lr')


@pytest.mark.parametrize('path', [p for p in RECIPES if method_of(p)])
def test_comparisons_share_teacher_student_data_and_schedule(path):
    """KD, OFD and MGD+KD train what the MGD config of their setting
    trains, on the same data and schedule."""
    match = DISTILL_NAME.match(osp.splitext(osp.basename(path))[0])
    cfg = read_config(path)
    mgd = sibling(
        path, f'mgd-amp_{match["teacher"]}-{match["student"]}_'
        f'{match["rest"]}')
    for key in ('architecture', 'teacher', 'teacher_ckpt',
                'data_preprocessor'):
        assert cfg.model[key] == mgd.model[key], key
    for key in SHARED:
        assert cfg[key] == mgd[key], key
    if match['method'] == 'ofd':
        # OFD distils where MGD does: the same student recorders, and the
        # teacher at the MGD margin BNs, weighted like the MGD positions.
        positions = mgd.model.distiller.positions
        with DefaultScope.overwrite_default_scope('mmrazor'):
            distiller = MODELS.build(cfg.model.distiller)
        assert len(distiller.distill_losses) == len(positions)
        for k, position in enumerate(positions):
            student = distiller.student_recorders.recorders[f'ofd{k}']
            assert student.source == position.student.source
            assert type(student).__name__ == (
                position.student.type + 'Recorder')
            assert (distiller.loss_forward_mappings[f'loss_ofd{k}']
                    ['s_feature']['record_idx'] == position.student.get(
                        'record_idx', 0))
            assert (distiller.teacher_recorders.recorders[f'ofd{k}'].source ==
                    position.teacher.margin_bn)
            loss = distiller.distill_losses[f'loss_ofd{k}']
            assert loss.loss_weight / loss.mul_factor == pytest.approx(
                position.loss_weight)


@pytest.mark.parametrize(
    'path', [p for p in RECIPES if (method_of(p) or '').startswith('mgd')])
def test_student_alone_is_the_distilled_student(path):
    """The baseline config trains the same network from the same weights,
    on the same data and schedule."""
    match = DISTILL_NAME.match(osp.splitext(osp.basename(path))[0])
    cfg = read_config(path)
    alone = sibling(path, f'{match["student"]}_{match["rest"]}')
    init_default_scope('mmpretrain')
    student = PRETRAIN_MODELS.build(cfg.model.architecture)
    baseline = PRETRAIN_MODELS.build(alone.model)
    for part in ('backbone', 'neck', 'head'):
        assert repr(getattr(student, part)) == repr(getattr(baseline, part))
    assert (cfg.model.architecture.backbone.get('init_cfg') ==
            alone.model.backbone.get('init_cfg'))
    for key in SHARED:
        assert cfg[key] == alone[key], key


@pytest.mark.parametrize('path', CONFIGS)
def test_name_gives_gpus_and_batch_size(path):
    cfg = read_config(path)
    match = re.search(r'_(\d+)xb(\d+)[-_]', osp.basename(path))
    if match is None:
        return  # the Fashion-MNIST demonstration names no GPU count
    gpus, batch = int(match[1]), int(match[2])
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == gpus * batch


def test_headline_imagenet_recipe_is_the_papers():
    cfg = read_config(
        osp.join('configs', 'mgd',
                 'mgd-amp_resnet50-mobilenet-v1_8xb32_in1k.py'))
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.auto_scale_lr.base_batch_size == 256
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum,
            optimizer.nesterov, optimizer.weight_decay) == ('SGD', 0.1, 0.9,
                                                            True, 1e-4)
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.begin == 0
    assert steps.type == 'MultiStepLR'
    hook, = cfg.custom_hooks
    assert (hook.interval, hook.num_samples) == (1, 20000)
    assert cfg.model.architecture.backbone.type == 'MobileNetV1'
    assert cfg.model.teacher.backbone.depth == 50
    assert 'resnet50_8xb32_in1k' in cfg.model.teacher_ckpt


@pytest.mark.parametrize(
    'path', [p for p in RECIPES if p.endswith('_cub.py') and method_of(p)])
def test_cub_recipes_are_the_papers(path):
    cfg = read_config(path)
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    # ImageNet-pretrained students from the model zoo.
    init = cfg.model.architecture.backbone.init_cfg
    assert init.type == 'Pretrained' and init.checkpoint.startswith('https')
    # The teacher is the checkpoint the CUB teacher config writes last.
    teacher = sibling(path, 'resnet50_4xb16_cub')
    assert cfg.model.teacher_ckpt == (
        f'work_dirs/resnet50_4xb16_cub/epoch_{teacher.train_cfg.max_epochs}'
        '.pth')
    assert cfg.model.teacher.head.num_classes == 200
    assert teacher.model.head.num_classes == 200
    if method_of(path).startswith('mgd'):
        hook, = cfg.custom_hooks
        assert hook.interval == 2
