"""Shared fixtures: tiny image folders and checkpoints written by the tests."""
import json
import os
import os.path as osp
import sys
import time

import numpy as np
import pytest

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import mgd_plugin  # noqa: E402,F401  (compat layer before mmrazor.models)

PYTHON_ON_SITE = osp.join(REPO_ROOT, 'tests', 'python_on_site.py')


@pytest.fixture(autouse=True)
def restore_default_scope():
    """A test that sets MMEngine's default scope (``init_default_scope``,
    a Runner) leaves it set for the tests after it; take it back, so that
    each test sees the scope it sets itself and no test depends on the
    order."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name, None)


def bare_python(site_dir=''):
    """The start of a command that runs this interpreter with the packages it
    imports from but no ``.pth`` file of its site-packages run: in
    particular, without the start-up hook of an mgd_plugin installed there
    (``mgd_plugin_startup.pth``) and without this checkout on the path.
    ``site_dir``, if given, is processed the way Python processes
    site-packages when it starts, and searched first. Append ``-c CODE`` or
    ``SCRIPT [ARGS]``.
    """
    checkout = {REPO_ROOT, osp.join(REPO_ROOT, 'tests')}
    # This process's path, not just site.getsitepackages(): it also has the
    # directories that .pth files of the site-packages added.
    packages = os.pathsep.join(
        p for p in sys.path if p and osp.abspath(p) not in checkout)
    return [sys.executable, '-S', PYTHON_ON_SITE, site_dir, packages]


def write_image_folder(root, num_classes=3, per_class=8, size=32, seed=0):
    """Write ``num_classes * per_class`` PNG images, one folder per class.

    Each class has its own mean colour so that a model can learn something.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in range(num_classes):
        folder = osp.join(root, f'class_{label}')
        os.makedirs(folder, exist_ok=True)
        base = rng.integers(0, 256, size=3)
        for index in range(per_class):
            noise = rng.integers(-40, 40, size=(size, size, 3))
            pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(osp.join(folder, f'{index}.png'))
    return root


def save_model_checkpoint(model, path):
    """Save ``model`` in the layout of the MMPretrain model zoo."""
    import torch

    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def save_moco_checkpoint(backbone, path, seed=1):
    """Save an MMPretrain MoCo-v2 with ``backbone`` (a config dict) in the
    layout of the model zoo's MoCo-v2 file: ``backbone.*``, ``neck.*``,
    ``encoder_k.*``, ``queue``, ``queue_ptr``. The backbone's BatchNorm
    statistics are not the defaults. Returns the model."""
    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        moco = MODELS.build(
            dict(
                type='MoCo',
                queue_len=16,
                feat_dim=8,
                momentum=0.001,
                backbone=backbone,
                neck=dict(
                    type='MoCoV2Neck',
                    in_channels=MODELS.build(backbone).feat_dim,
                    hid_channels=16,
                    out_channels=8),
                head=dict(
                    type='ContrastiveHead',
                    loss=dict(type='CrossEntropyLoss'),
                    temperature=0.2)))
    with torch.no_grad():
        for name, buffer in moco.backbone.named_buffers():
            if name.endswith(('running_mean', 'running_var')):
                buffer.uniform_(0.5, 1.5)
    save_model_checkpoint(moco, path)
    return moco


def write_scalars_log(work_dir, timestamp, lines):
    """Write ``lines`` (dicts) as MMEngine's JSON-lines log
    ``<work_dir>/<timestamp>/vis_data/scalars.json``; returns its path."""
    folder = osp.join(work_dir, timestamp, 'vis_data')
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, 'scalars.json')
    with open(path, 'w') as file:
        for line in lines:
            file.write(json.dumps(line) + '\n')
    return path


def line_data(ax):
    """{label: (x, y)} of the lines a matplotlib Axes draws."""
    return {
        line.get_label(): (line.get_xdata(), line.get_ydata())
        for line in ax.get_lines()
    }


@pytest.fixture(scope='session')
def tiny_image_folder(tmp_path_factory):
    return write_image_folder(str(tmp_path_factory.mktemp('tiny_images')))


class FakeTools:
    """Stands in for ``run_main_job._call``: writes what tools/train.py
    (checkpoints, ``last_checkpoint``), tools/test.py and knn_eval.py (the
    metrics file) would, and records the commands and options.

    Args:
        top1: {work dir name prefix: top-1} that test.py reports for the
            checkpoints of a work dir starting with the prefix (the first
            one that matches).
        knn: the same for knn_eval.py, {prefix: {k: top-1}}, by the
            pretraining checkpoint's work dir.
        interrupt_after: train.py stops with SystemExit after this epoch,
            once.
    """

    def __init__(self, top1=None, knn=None, interrupt_after=None):
        self.commands = []
        self.options = []
        self.top1 = top1 or {}
        self.knn = knn or {}
        self.interrupt_after = interrupt_after

    @staticmethod
    def _match(table, path):
        stem = osp.basename(osp.dirname(path))
        return table[next(k for k in table if stem.startswith(k))]

    def __call__(self, command, **options):
        self.commands.append(command)
        self.options.append(options)
        tool = command[1]
        if tool == 'tools/train.py':
            return self.train(command)
        out = command[command.index('--out') + 1]
        if tool == 'tools/analysis_tools/knn_eval.py':
            checkpoint = command[command.index('--checkpoint') + 1]
            metrics = {
                f'knn/top1@k{k}': v
                for k, v in self._match(self.knn, checkpoint).items()
            }
        else:
            assert tool == 'tools/test.py'
            metrics = {
                'accuracy/top1': self._match(self.top1, command[3]),
                'config': command[2]
            }
        with open(out, 'w') as f:
            json.dump(metrics, f)
        return 0.0

    def train(self, command):
        from mmengine.config import Config
        config = Config.fromfile(osp.join(REPO_ROOT, command[2]))
        work_dir = command[command.index('--work-dir') + 1]
        last = osp.join(work_dir, 'last_checkpoint')
        start = 0
        if '--resume' in command:
            with open(last) as f:
                start = int(f.read().strip().split('epoch_')[1][:-4])
        for epoch in range(start + 1, config.train_cfg.max_epochs + 1):
            path = osp.join(work_dir, f'epoch_{epoch}.pth')
            with open(path, 'w') as f:
                f.write(str(time.time_ns()))
            with open(last, 'w') as f:
                f.write(path)
            if epoch == self.interrupt_after:
                self.interrupt_after = None
                raise SystemExit('killed')
        return 0.0
