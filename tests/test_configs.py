"""Every shipped top-level config loads, builds and runs one training step.

The datasets are not on the CI machine, so the data pipelines are not
built here (tests/test_train_tools.py and test_matching_update_hook.py run
the same code path on image folders they write); the models, the matching
hook and, on a fake batch of the config's input size, one MGD training
step are.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, init_default_scope
from mmpretrain.structures import DataSample
from mmrazor.registry import MODELS

from conftest import REPO_ROOT

CONFIGS = sorted(
    osp.relpath(path, REPO_ROOT)
    for path in glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py')))
# (channels, side) of the inputs each dataset gives.
INPUTS = {'fashion-mnist': (1, 28), 'in1k': (3, 64)}


def test_every_top_level_config_is_listed():
    assert len(CONFIGS) == 10
    assert all(any(key in path for key in INPUTS) for path in CONFIGS)


def fake_batch(path, num=2):
    channels, side = next(v for k, v in INPUTS.items() if k in path)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (num, channels, side, side),
                           dtype=torch.uint8, generator=generator)
    return dict(
        inputs=list(images.unbind(0)),
        data_samples=[DataSample().set_gt_label(k % 10) for k in range(num)])


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_and_trains_one_step(path):
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    # Nothing can be downloaded here, and the Fashion-MNIST teacher is a
    # file the main job writes.
    if 'teacher_ckpt' in cfg.model:
        cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim_wrapper = OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.01))
    data = fake_batch(path)

    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.type == 'MatchingUpdateHook']
    if 'mgd' in osp.basename(path):
        assert len(hooks) == 1, 'an MGD config needs its MatchingUpdateHook'
        hook = HOOKS.build(hooks[0])
        assert hook.num_samples > 0
        model.matching_pass([data], len(data['inputs']), show_progress=False)
        assert model.matching_installed
    else:
        assert not hooks

    model.train()
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    if 'mgd' in osp.basename(path):
        assert sum(key.startswith('distill.loss_mgd')
                   for key in log_vars) == len(cfg.model.distiller.positions)
    if osp.basename(path).startswith(('kd', 'ofd', 'mgd-amp-kd')):
        assert any(key.startswith(('distill.loss_kd', 'distill.loss_ofd'))
                   for key in log_vars)
