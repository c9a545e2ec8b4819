"""tools/analysis_tools/find_positions.py and the position finder behind it.

The finder must find, from the networks alone, the positions that
docs/feature_positions.md documents (its tables are parsed here) and that
the shipped configs use; the block it prints must be the same positions as
Python, and work when pasted into an MGD config.
"""
import copy
import math
import os.path as osp
import re
from functools import lru_cache

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmrazor.registry import MODELS

from conftest import REPO_ROOT
from mgd_plugin.utils.position_finder import (PositionError, find_positions,
                                              loss_factor_for)

DOCS = osp.join(REPO_ROOT, 'docs', 'feature_positions.md')
TOOL = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'find_positions.py')
TINY_MGD = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                    'mgd_tiny_resnet.py')
SIZE = 64  # every documented 224 px size is exactly SIZE / 224 of it


def _run_tool(argv, capsys):
    import runpy
    module = runpy.run_path(TOOL)
    code = module['main'](argv)
    out, err = capsys.readouterr()
    return code, out, err


def _comments(text):
    """The printed comments as one line of text."""
    return ' '.join(line.strip().lstrip('#').strip()
                    for line in text.splitlines()
                    if line.strip().startswith('#'))


def _exec_block(text):
    namespace = {}
    exec(text, namespace)  # the printed block is plain Python
    return namespace['positions']


# ----------------------------------------------------------------------
# The documented positions, read from docs/feature_positions.md.
# ----------------------------------------------------------------------
def _cells(line):
    return [cell.strip() for cell in line.strip().strip('|').split('|')]


@lru_cache()
def documented_positions():
    """Per network name ('ResNet-50', 'MobileNet-V2', ...), the documented
    rows: dict(type, source, record_idx, channels, size_224, bn)."""
    networks = {}
    sections = re.split(r'^#+ ', open(DOCS).read(), flags=re.M)
    for section in sections:
        heading, _, body = section.partition('\n')
        lines = [line for line in body.splitlines() if line.startswith('|')]
        if len(lines) < 3:
            continue
        header = _cells(lines[0])
        rows = []
        for line in lines[2:]:
            row = dict(zip(header, _cells(line)))
            if not row['position'].isdigit():
                continue  # a stage that is not distilled
            recorder, source = re.findall(r'`([^`]+)`',
                                          row['recorder / source'])
            bn = re.findall(r'`([^`]+)`', row['BN before the activation'])
            rows.append(
                dict(
                    type=recorder,
                    source=source,
                    record_idx=int(row['record_idx']),
                    channels=int(row['C']),
                    size_224=int(row['H×W'].split('×')[0]),
                    bn=bn[0] if bn else source))
        # A ResNet table is a template over the last block of each stage.
        last_blocks = re.findall(r'(ResNet-\d+)\s+`\[([\d, ]+)\]`', body)
        if last_blocks:
            for name, indices in last_blocks:
                indices = [int(i) for i in indices.split(',')]
                networks[name] = [{
                    key:
                    value.replace('{last}', str(indices[k])) if isinstance(
                        value, str) else value
                    for key, value in row.items()
                } for k, row in enumerate(rows)]
        else:
            networks[heading.split()[0]] = rows
    return networks


def test_docs_tables_are_parsed():
    docs = documented_positions()
    for name in ('ResNet-18', 'ResNet-34', 'ResNet-50', 'ResNet-152',
                 'MobileNet-V1', 'MobileNet-V2', 'ShuffleNet-V2'):
        assert len(docs[name]) in (3, 4), name
    assert docs['ResNet-152'][2]['source'] == 'backbone.layer3.35.relu'
    assert docs['ShuffleNet-V2'][0]['channels'] == 58


def _documented_config(row, teacher):
    cfg = dict(type=row['type'], source=row['source'])
    if row['type'] == 'ModuleInputs' or row['record_idx']:
        cfg['record_idx'] = row['record_idx']
    cfg['channels'] = row['channels']
    if teacher:
        cfg['margin_bn'] = row['bn']
    return cfg


def documented_pair(teacher, student):
    """The documented positions of a pair: student rows, each with the
    teacher row of the same size."""
    docs = documented_positions()
    teacher_rows = {row['size_224']: row for row in docs[teacher]}
    return [(row['size_224'],
             dict(
                 student=_documented_config(row, False),
                 teacher=_documented_config(teacher_rows[row['size_224']],
                                            True))) for row in docs[student]]


# ----------------------------------------------------------------------
# Networks, and the finder's reports (each pair is found once).
# ----------------------------------------------------------------------
def classifier(backbone):
    return dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=8,
            loss=dict(type='CrossEntropyLoss')))


NETWORKS = {
    'ResNet-18': dict(type='ResNet', depth=18),
    'ResNet-34': dict(type='ResNet', depth=34),
    'ResNet-50': dict(type='ResNet', depth=50),
    'ResNet-101': dict(type='ResNet', depth=101),
    'ResNet-152': dict(type='ResNet', depth=152),
    'MobileNet-V2': dict(type='MobileNetV2', widen_factor=1.0),
    'ShuffleNet-V2': dict(type='ShuffleNetV2', widen_factor=1.0),
    'MobileNet-V1': dict(type='MobileNetV1', widen_factor=1.0),
}
BASE_CONFIGS = {
    'ResNet-18': 'configs/_base_/models/mgd-amp_resnet50-resnet18.py',
    'MobileNet-V2': 'configs/_base_/models/mgd-amp_resnet50-mobilenet-v2.py',
    'ShuffleNet-V2': 'configs/_base_/models/mgd-amp_resnet50-shufflenet-v2.py',
    'MobileNet-V1': 'configs/_base_/models/mgd-amp_resnet50-mobilenet-v1.py',
}
# (teacher, student): every documented network is on one side. The shipped
# pairs (and the MobileNet-V1 test config) are found from their configs.
PAIRS = [('ResNet-50', 'ResNet-18'), ('ResNet-50', 'ResNet-34'),
         ('ResNet-152', 'ResNet-50'), ('ResNet-50', 'MobileNet-V2'),
         ('ResNet-50', 'ShuffleNet-V2'), ('ResNet-50', 'MobileNet-V1')]


@lru_cache()
def report(teacher, student):
    if teacher == 'ResNet-50' and student in BASE_CONFIGS:
        config = osp.join(REPO_ROOT, BASE_CONFIGS[student])
        return find_positions(config, config, (SIZE, SIZE))
    return find_positions(
        Config(dict(model=classifier(NETWORKS[teacher]))),
        Config(dict(model=classifier(NETWORKS[student]))), (SIZE, SIZE))


@pytest.mark.parametrize('teacher, student', PAIRS)
def test_finds_the_documented_positions(teacher, student):
    found = report(teacher, student)
    expected = documented_pair(teacher, student)
    assert [p.size for p in found.positions] == [(size * SIZE // 224, ) * 2
                                                 for size, _ in expected]
    configs = found.configs()
    for position in configs:
        del position['loss_weight']
    assert configs == [position for _, position in expected]


@pytest.mark.parametrize('teacher, student', PAIRS)
def test_printed_block_is_the_found_positions(teacher, student):
    found = report(teacher, student)
    positions = _exec_block(found.format())
    assert positions == found.configs()
    count = len(positions)
    factor = 1e4 * SIZE * SIZE / 224**2
    for k, position in enumerate(positions):
        assert position['loss_weight'] == 1 / 2**(count - k - 1) / factor


@pytest.mark.parametrize('student', sorted(BASE_CONFIGS))
def test_finds_the_positions_of_the_shipped_configs(student):
    found = report('ResNet-50', student).configs()
    shipped = Config.fromfile(osp.join(REPO_ROOT, BASE_CONFIGS[student]))
    shipped = copy.deepcopy(shipped.model.distiller.positions)
    # The shipped weights are for 224 px; the finder ran at SIZE px.
    scale = loss_factor_for(SIZE, SIZE) / loss_factor_for(224, 224)
    for position in found:
        position['loss_weight'] *= scale
    for position, expected in zip(found, shipped):
        assert position.pop('loss_weight') == pytest.approx(
            expected.pop('loss_weight'), rel=1e-12)
    assert found == [dict(position) for position in shipped]


def test_tool_reproduces_the_fashion_mnist_recipe(capsys):
    # One distillation config gives both networks; at its own 28 px the
    # printed block is the recipe's positions.
    config = osp.join(REPO_ROOT, 'configs', 'mgd',
                      'mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py')
    code, out, _ = _run_tool([config, '--input-size', '28'], capsys)
    assert code == 0
    # in_channels comes from the config.
    assert 'for a 1-channel 28x28 input' in _comments(out)
    recipe = [
        dict(p) for p in Config.fromfile(config).model.distiller.positions
    ]
    found = _exec_block(out)
    # The finder scales the 224 px loss factor to 28 px (1e4 * (28/224)^2);
    # the recipe chose 1e3 on held-out images. Stage weights agree.
    found_weights = [p.pop('loss_weight') for p in found]
    recipe_weights = [p.pop('loss_weight') for p in recipe]
    assert found == recipe
    assert found_weights[-1] == pytest.approx(1 / (1e4 * (28 / 224)**2))
    assert [w / found_weights[-1] for w in found_weights] == pytest.approx(
        [w / recipe_weights[-1] for w in recipe_weights])


def test_notes_name_the_fallbacks():
    shufflenet = _comments(report('ResNet-50', 'ShuffleNet-V2').format())
    assert ('student, 8x8: the output of backbone.layers.0.3 (116 ch) is '
            'not the output of an activation, so it has no pre-activation '
            'tensor; recorded instead the last pre-activation tensor of that '
            'block whose activation gives 58 of the 116 output channels: '
            'backbone.layers.0.3.branch2.2.bn.') in shufflenet
    assert ('teacher stages at 16x16: the student has no stage of that size'
            in shufflenet)
    assert 'student stages at 32x32' in shufflenet  # the stem
    mobilenet = _comments(report('ResNet-50', 'MobileNet-V2').format())
    assert ('the output of backbone.layer4.3 (64 ch) has no activation (a '
            'linear output)' in mobilenet)
    assert ('that backbone.layer5.0 computes from it at 4x4: '
            'backbone.layer5.0.conv.0.bn (384 ch)' in mobilenet)
    # Where the stage output is pre-activation, nothing needs saying.
    assert 'no pre-activation' not in report('ResNet-50', 'ResNet-18').format()


# ----------------------------------------------------------------------
# The printed block in an MGD config: it builds and trains.
# ----------------------------------------------------------------------
TINY_TEACHER = classifier(
    dict(type='ResNet_CIFAR', depth=50, stem_channels=8, base_channels=8))
TINY_TEACHER['head'].update(num_classes=3, in_channels=256)
TINY_STUDENT = classifier(dict(type='MobileNetV2', widen_factor=0.25))
TINY_STUDENT['head'].update(num_classes=3, in_channels=1280)


def _write_config(path, model):
    Config(dict(model=dict(model, _scope_='mmpretrain'))).dump(str(path))
    return str(path)


def test_pasted_block_builds_and_trains(tmp_path, tiny_image_folder, capsys):
    teacher = _write_config(tmp_path / 'teacher.py', TINY_TEACHER)
    student = _write_config(tmp_path / 'student.py', TINY_STUDENT)
    code, block, _ = _run_tool([teacher, student, '--input-size', '32'],
                               capsys)
    assert code == 0
    # A linear-output student: its positions are the fallback tensors.
    assert "type='ModuleOutputs'" in block
    config = tmp_path / 'mgd.py'
    config.write_text(
        f'_base_ = [{TINY_MGD!r}]\n'
        f'model = dict(\n'
        f'    architecture=dict(_delete_=True, _scope_="mmpretrain", '
        f'**{TINY_STUDENT!r}),\n'
        f'    teacher=dict(_delete_=True, _scope_="mmpretrain", '
        f'**{TINY_TEACHER!r}),\n'
        f'    distiller=dict(\n{block}))\n')
    cfg = Config.fromfile(str(config))
    init_default_scope('mmrazor')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    count = len(model.distiller.positions)
    assert count == len(_exec_block(block)) == 3

    loader_cfg = copy.deepcopy(cfg.custom_hooks[0].dataloader)
    loader_cfg.dataset.data_root = tiny_image_folder
    loader = Runner.build_dataloader(loader_cfg)
    report_ = model.matching_pass(loader, 16, show_progress=False)
    assert model.matching_installed
    assert all(math.isfinite(r['mean_cost']) for r in report_.values())

    model.train()
    optim_wrapper = OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.01))
    log_vars = model.train_step(next(iter(loader)), optim_wrapper)
    for k in range(count):
        loss = log_vars[f'distill.loss_mgd{k}']
        assert math.isfinite(loss.item()) and loss.item() > 0


# ----------------------------------------------------------------------
# Errors.
# ----------------------------------------------------------------------
def _tiny_resnet(base_channels, depth=18, **kwargs):
    return Config(
        dict(
            model=classifier(
                dict(
                    type='ResNet_CIFAR',
                    depth=depth,
                    stem_channels=base_channels,
                    base_channels=base_channels,
                    **kwargs))))


def test_no_stage_of_equal_size_is_an_error(capsys):
    # Every teacher stage at 32x32, every student stage below it.
    teacher = _tiny_resnet(8, strides=(1, 1, 1, 1))
    student = Config(dict(model=classifier(dict(type='ResNet', depth=18))))
    with pytest.raises(
            PositionError,
            match=r'no stage of equal spatial size for a 32x32 '
            r'input \(teacher stages: 32x32; student stages: '
            r'8x8, 4x4, 2x2, 1x1\)'):
        find_positions(teacher, student, (32, 32))


def test_wider_student_is_an_error(tmp_path, capsys):
    teacher = _write_config(tmp_path / 'teacher.py', _tiny_resnet(4).model)
    student = _write_config(tmp_path / 'student.py', _tiny_resnet(8).model)
    code, out, err = _run_tool([teacher, student, '--input-size', '32'],
                               capsys)
    assert code == 1 and out == ''
    assert ('At 32x32 the student feature backbone.layer1.1.relu has 8 '
            'channels, more than the teacher feature '
            'backbone.layer1.1.relu (4)') in err


def test_teacher_feature_without_batchnorm_is_an_error():
    teacher = _tiny_resnet(8, norm_cfg=dict(type='GN', num_groups=2))
    with pytest.raises(
            PositionError, match='is not the output of a BatchNorm'):
        find_positions(teacher, _tiny_resnet(4), (32, 32))


def test_num_positions_keeps_the_deepest():
    found = find_positions(
        _tiny_resnet(8, depth=50), _tiny_resnet(4), (32, 32), num_positions=2)
    assert [p.size for p in found.positions] == [(8, 8), (4, 4)]
    factor = loss_factor_for(32, 32)
    assert [p['loss_weight']
            for p in found.configs()] == [1 / 2 / factor, 1 / factor]
    assert '--num-positions 2: not distilled at 32x32, 16x16' in (
        found.format())
    with pytest.raises(
            PositionError,
            match=r'--num-positions 5: the pair has 4 positions'):
        find_positions(
            _tiny_resnet(8, depth=50),
            _tiny_resnet(4), (32, 32),
            num_positions=5)


def test_config_errors(tmp_path, capsys):
    code, _, err = _run_tool(['no/such/config.py'], capsys)
    assert code == 1
    assert 'config file no/such/config.py does not exist' in err
    plain = _write_config(tmp_path / 'plain.py', _tiny_resnet(4).model)
    code, _, err = _run_tool([plain], capsys)
    assert code == 1
    assert 'plain.py is not a distillation config' in err
    broken = _tiny_resnet(4).model
    broken.backbone.type = 'ResNet_CIFAAR'
    broken = _write_config(tmp_path / 'broken.py', broken)
    code, _, err = _run_tool([plain, broken], capsys)
    assert code == 1
    assert ('broken.py: cannot build the student from `model`: KeyError: '
            "'ResNet_CIFAAR is not in the mmpretrain::model registry") in err
    code, _, err = _run_tool([plain, plain, '--in-channels', '2'], capsys)
    assert code == 1
    assert ('The teacher ResNet_CIFAR (' + plain + ') fails on a '
            '1x2x224x224 input') in err
