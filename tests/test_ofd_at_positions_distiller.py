"""OFDAtPositionsDistiller: MMRazor's OFD built from MGD ``positions``."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmrazor.models.architectures.connectors import (ConvModuleConnector,
                                                     OFDTeacherConnector)
from mmrazor.models.distillers import OFDDistiller
from mmrazor.models.losses import OFDLoss
from mmrazor.registry import MODELS

from conftest import REPO_ROOT
from mgd_plugin.models.distillers import ofd_distiller_args
from test_matching_guided_distillation import batch, model_cfg

R50_R18_MGD = osp.join(REPO_ROOT, 'configs', 'mgd',
                       'mgd-amp_resnet50-resnet18_8xb32_in1k.py')


def _student_connector(in_channel, out_channel):
    return dict(
        type='ConvModuleConnector',
        in_channel=in_channel,
        out_channel=out_channel,
        norm_cfg=dict(type='BN'),
        act_cfg=None)


def _mapping(k, record_idx, data_idx):
    return dict(
        s_feature=dict(
            from_student=True,
            recorder=f'ofd{k}',
            record_idx=record_idx,
            data_idx=data_idx,
            connector=f'ofd{k}_s'),
        t_feature=dict(
            from_student=False, recorder=f'ofd{k}', connector=f'ofd{k}_t'))


# What configs/mgd/ofd_resnet50-resnet18_8xb32_in1k.py spelled out before
# the distiller existed (its distiller dict, `type` aside).
R50_R18_OFD = dict(
    student_recorders={
        'ofd0': dict(type='ModuleInputs', source='backbone.layer1.1.relu'),
        'ofd1': dict(type='ModuleInputs', source='backbone.layer2.1.relu'),
        'ofd2': dict(type='ModuleInputs', source='backbone.layer3.1.relu'),
        'ofd3': dict(type='ModuleInputs', source='backbone.layer4.1.relu'),
    },
    teacher_recorders={
        'ofd0': dict(type='ModuleOutputs', source='backbone.layer1.2.bn3'),
        'ofd1': dict(type='ModuleOutputs', source='backbone.layer2.3.bn3'),
        'ofd2': dict(type='ModuleOutputs', source='backbone.layer3.5.bn3'),
        'ofd3': dict(type='ModuleOutputs', source='backbone.layer4.2.bn3'),
    },
    connectors={
        'ofd0_s': _student_connector(64, 256),
        'ofd1_s': _student_connector(128, 512),
        'ofd2_s': _student_connector(256, 1024),
        'ofd3_s': _student_connector(512, 2048),
        'ofd0_t': dict(type='OFDTeacherConnector'),
        'ofd1_t': dict(type='OFDTeacherConnector'),
        'ofd2_t': dict(type='OFDTeacherConnector'),
        'ofd3_t': dict(type='OFDTeacherConnector'),
    },
    distill_losses={
        'loss_ofd0': dict(type='OFDLoss', loss_weight=1 / 8, mul_factor=1e4),
        'loss_ofd1': dict(type='OFDLoss', loss_weight=1 / 4, mul_factor=1e4),
        'loss_ofd2': dict(type='OFDLoss', loss_weight=1 / 2, mul_factor=1e4),
        'loss_ofd3': dict(type='OFDLoss', loss_weight=1, mul_factor=1e4),
    },
    loss_forward_mappings={
        f'loss_ofd{k}': _mapping(k, record_idx=1, data_idx=0)
        for k in range(4)
    })


def tiny_positions():
    """The positions of tests/data/configs/mgd_tiny_resnet.py, as dicts."""
    return [p.to_dict() for p in model_cfg().distiller.positions]


def build_distiller(**kwargs):
    # Other tests leave MMPretrain's scope as the default one.
    return MODELS.build(
        dict(_scope_='mmrazor', type='OFDAtPositionsDistiller', **kwargs))


def test_builds_what_the_resnet18_recipe_spelled_out():
    positions = Config.fromfile(R50_R18_MGD).model.distiller.positions
    args = ofd_distiller_args(positions, [1 / 8, 1 / 4, 1 / 2, 1], 1e4)
    assert args == R50_R18_OFD


def test_per_side_positions_give_the_same_arguments():
    positions = tiny_positions()
    per_side = dict(
        student=[p['student'] for p in positions],
        teacher=[p['teacher'] for p in positions],
        loss_weight=[p['loss_weight'] for p in positions])
    weights = [1 / 8, 1 / 4, 1 / 2, 1]
    assert (ofd_distiller_args(per_side, weights, 1e2) == ofd_distiller_args(
        positions, weights, 1e2))


def test_a_module_outputs_student_and_its_own_indices():
    position = tiny_positions()[0]
    position['student'] = dict(
        type='ModuleOutputs', source='backbone.layer1', channels=4)
    args = ofd_distiller_args([position], [1], 1e3)
    assert args['student_recorders'] == {
        'ofd0': dict(type='ModuleOutputs', source='backbone.layer1')
    }
    assert args['loss_forward_mappings']['loss_ofd0'] == _mapping(
        0, record_idx=0, data_idx=None)
    position['student'].update(record_idx=2, data_idx=1)
    args = ofd_distiller_args([position], [1], 1e3)
    assert args['loss_forward_mappings']['loss_ofd0'] == _mapping(
        0, record_idx=2, data_idx=1)


def test_builds_mmrazor_ofd_parts():
    distiller = build_distiller(
        positions=tiny_positions(),
        loss_weights=[1 / 8, 1 / 4, 1 / 2, 1],
        mul_factor=1e2)
    assert isinstance(distiller, OFDDistiller)
    for k, (s, t) in enumerate([(4, 16), (8, 32), (16, 64), (32, 128)]):
        student = distiller.connectors[f'ofd{k}_s']
        assert isinstance(student, ConvModuleConnector)
        conv = student.conv_module
        assert (conv.conv.in_channels, conv.conv.out_channels) == (s, t)
        assert conv.conv.kernel_size == (1, 1)
        assert isinstance(conv.norm, torch.nn.BatchNorm2d)
        assert not conv.with_activation
        assert isinstance(distiller.connectors[f'ofd{k}_t'],
                          OFDTeacherConnector)
        loss = distiller.distill_losses[f'loss_ofd{k}']
        assert isinstance(loss, OFDLoss)
        assert (loss.loss_weight, loss.mul_factor) == (2**(k - 3), 1e2)


def test_trains_a_step_of_overhaul_feature_distillation():
    cfg = model_cfg()
    cfg.type = 'OverhaulFeatureDistillation'
    cfg.distiller = dict(
        type='OFDAtPositionsDistiller',
        positions=cfg.distiller.positions,
        loss_weights=[1 / 8, 1 / 4, 1 / 2, 1],
        mul_factor=1e2)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    # OverhaulFeatureDistillation gave every teacher connector the margins
    # of the BatchNorm its recorder names.
    for k in range(4):
        margin = model.distiller.connectors[f'ofd{k}_t'].margin
        assert margin.shape == (1, 16 * 2**k, 1, 1)
    optimizer = OptimWrapper(
        torch.optim.SGD(model.distiller.parameters(), lr=0.1))
    log_vars = model.train_step(batch(4), optimizer)
    losses = {key for key in log_vars if key.startswith('distill.')}
    assert losses == {f'distill.loss_ofd{k}' for k in range(4)}
    assert all(log_vars[key] > 0 for key in losses)


@pytest.mark.parametrize('side, key', [('teacher', 'margin_bn'),
                                       ('teacher', 'channels'),
                                       ('student', 'channels'),
                                       ('student', 'source')])
def test_a_position_without_a_needed_key_is_named(side, key):
    positions = tiny_positions()
    del positions[2][side][key]
    with pytest.raises(
            ValueError,
            match=rf"OFD position 2 \(MGD position 'mgd2'\) lacks "
            rf'{side}\.{key}'):
        build_distiller(
            positions=positions, loss_weights=[1, 1, 1, 1], mul_factor=1e3)


def test_a_named_position_is_named_by_its_name():
    positions = tiny_positions()
    positions[1]['name'] = 'stage2'
    del positions[1]['teacher']
    with pytest.raises(
            ValueError,
            match=r"OFD position 1 \(MGD position 'stage2'\) has no "
            "'teacher' entry"):
        ofd_distiller_args(positions, [1, 1, 1, 1], 1e3)


@pytest.mark.parametrize(
    'change, message',
    [(dict(loss_weights=[1, 1]), '2 loss_weights for 4 positions'),
     (dict(positions=[]), 'needs at least one position'),
     (dict(connectors={}), r"builds \['connectors'\] from `positions`")])
def test_bad_arguments(change, message):
    args = dict(
        positions=tiny_positions(), loss_weights=[1, 1, 1, 1], mul_factor=1e3)
    args.update(copy.deepcopy(change))
    with pytest.raises(ValueError, match=message):
        build_distiller(**args)
