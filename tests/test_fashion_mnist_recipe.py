"""The Fashion-MNIST recipe's configs agree with each other.

Every student (alone, KD, OFD, each MGD variant) has the same network,
data and schedule; every distillation config's teacher is the network the
teacher config trains, loaded from where that training writes it.
"""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import run_main_job  # noqa: E402

DISTILL = sorted(
    osp.relpath(path, REPO_ROOT) for path in glob.glob(
        osp.join(REPO_ROOT, 'configs', '*', '*fashion-mnist-10k.py'))
    if 'fashion_mnist' not in path and 'mgd_moco' not in path)
SCHEDULE_KEYS = ('train_cfg', 'optim_wrapper', 'param_scheduler',
                 'train_dataloader', 'randomness')


def load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


def without_scope(model):
    model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
    model.pop('_scope_', None)
    return model


def test_every_baseline_and_mgd_variant_is_there():
    names = [osp.basename(path).split('_')[0] for path in DISTILL]
    assert sorted(names) == sorted(
        ['kd', 'ofd', 'mgd-amp', 'mgd-rd', 'mgd-sp', 'mgd-sm', 'mgd-amp-kd'])
    assert run_main_job.MGD in DISTILL


@pytest.mark.parametrize('path', DISTILL)
def test_students_share_network_data_and_schedule(path):
    student = load(run_main_job.STUDENT)
    cfg = load(path)
    assert without_scope(cfg.model.architecture) == without_scope(
        student.model)
    for key in SCHEDULE_KEYS:
        assert cfg[key] == student[key], key
    assert cfg.model.data_preprocessor.mean == student.data_preprocessor.mean
    assert cfg.model.data_preprocessor.std == student.data_preprocessor.std


@pytest.mark.parametrize('path', DISTILL)
def test_teacher_is_what_the_teacher_config_trains(path):
    teacher = load(run_main_job.TEACHER)
    cfg = load(path)
    assert without_scope(cfg.model.teacher) == without_scope(teacher.model)
    stem = osp.splitext(osp.basename(run_main_job.TEACHER))[0]
    assert cfg.model.teacher_ckpt == (
        f'work_dirs/{stem}/epoch_{teacher.train_cfg.max_epochs}.pth')


def test_mgd_positions_match_the_widths():
    student = load(run_main_job.STUDENT).model.backbone
    teacher = load(run_main_job.TEACHER).model.backbone
    positions = load(run_main_job.MGD).model.distiller.positions
    assert [p.student.channels for p in positions] == [
        student.base_channels * 2**k for k in range(student.num_stages)
    ]
    assert [p.teacher.channels for p in positions] == [
        teacher.base_channels * 2**k for k in range(teacher.num_stages)
    ]


def test_ofd_distils_at_the_mgd_positions_with_the_mgd_weights():
    ofd = load('configs/ofd/ofd_resnet18-w16-w4_10e_fashion-mnist-10k.py')
    positions = load(run_main_job.MGD).model.distiller.positions
    distiller = ofd.model.distiller
    assert distiller.type == 'OFDAtPositionsDistiller'
    assert distiller.positions == positions
    assert [w / distiller.mul_factor for w in distiller.loss_weights
            ] == pytest.approx([p.loss_weight for p in positions])
