"""Student export and evaluation of distillation checkpoints: a real MGD run
through tools/train.py, then tools/model_converters/export_student.py,
MMPretrain's get_model and inferencer, and tools/test.py (also without the
training-time teacher file)."""
import copy
import importlib.util
import json
import os.path as osp
import shutil
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint

from conftest import REPO_ROOT, save_model_checkpoint
from mgd_plugin.utils import (ConfigCheckError, student_config,
                              use_checkpoint_teacher)
from test_matching_update_hook import MGD_CONFIG, mgd_options
from test_train_tools import check, run, train

KD_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                     'kd_tiny_resnet.py')
EXPORT_TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters',
                       'export_student.py')


def export_tool(argv):
    """Run the tool's main() in this process (it is a thin wrapper)."""
    spec = importlib.util.spec_from_file_location('export_student',
                                                  EXPORT_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(a) for a in argv])


def merged_config(options):
    """The config tools/train.py ran: the file plus its --cfg-options."""
    cfg = Config.fromfile(options[0])
    cfg.merge_from_dict(dict(o.split('=', 1) for o in options[2:]))
    return cfg


def student_predictions(model, dataloader):
    """Per-image (scores, label) of ``model`` in test mode."""
    model.eval()
    scores, labels = [], []
    with torch.no_grad():
        for data in dataloader:
            for sample in model.test_step(data):
                scores.append(sample.pred_score)
                labels.append(int(sample.gt_label))
    return torch.stack(scores), torch.tensor(labels)


def accuracy(scores, labels):
    return float((scores.argmax(1) == labels).float().mean() * 100)


def test_accuracy(config, checkpoint, work_dir, cfg_options=()):
    """top-1 from tools/test.py, run as a user would."""
    out = osp.join(str(work_dir), 'metrics.json')
    proc = check(
        run([
            sys.executable, 'tools/test.py',
            str(config),
            str(checkpoint), '--work-dir',
            str(work_dir), '--out', out
        ] + list(cfg_options)))
    with open(out) as f:
        return json.load(f)['accuracy/top1'], proc.stdout + proc.stderr


test_accuracy.__test__ = False  # a helper, not a test


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_image_folder):
    """One epoch of MGD on the tiny data, and the student's test-set
    predictions from the distillation checkpoint (teacher file present)."""
    root = tmp_path_factory.mktemp('export')
    torch.manual_seed(0)
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    teacher = PRETRAIN_MODELS.build(Config.fromfile(MGD_CONFIG).teacher)
    teacher_ckpt = save_model_checkpoint(teacher, str(root / 'teacher.pth'))
    (root / 'configs').mkdir()
    options = mgd_options(root / 'configs', tiny_image_folder, teacher_ckpt, 1)
    check(train(options + ['--work-dir', str(root / 'work')]))
    checkpoint = root / 'work' / 'epoch_1.pth'

    cfg = merged_config(options)
    from mmrazor.registry import MODELS
    algorithm = MODELS.build(copy.deepcopy(cfg.model))
    load_checkpoint(algorithm, str(checkpoint), map_location='cpu')
    with DefaultScope.overwrite_default_scope('mmrazor'):
        dataloader = Runner.build_dataloader(cfg.test_dataloader)
    scores, labels = student_predictions(algorithm, dataloader)
    dataset = dataloader.dataset
    return dict(
        options=options,
        cfg=cfg,
        checkpoint=checkpoint,
        teacher_ckpt=teacher_ckpt,
        scores=scores,
        labels=labels,
        image_paths=[
            dataset.get_data_info(i)['img_path'] for i in range(len(dataset))
        ])


def test_test_tool_needs_no_teacher_file(trained, tmp_path):
    moved = tmp_path / 'teacher_elsewhere.pth'
    shutil.move(trained['teacher_ckpt'], moved)
    try:
        top1, log = test_accuracy(trained['options'][0], trained['checkpoint'],
                                  tmp_path / 'test', trained['options'][1:])
    finally:
        shutil.move(moved, trained['teacher_ckpt'])
    assert 'The teacher weights come from' in log
    assert top1 == pytest.approx(
        accuracy(trained['scores'], trained['labels']), abs=1e-4)


def test_teacher_file_still_needed_without_teacher_weights(trained, tmp_path):
    saved = torch.load(trained['checkpoint'], weights_only=True)
    saved['state_dict'] = {
        k: v
        for k, v in saved['state_dict'].items() if not k.startswith('teacher.')
    }
    no_teacher = tmp_path / 'no_teacher.pth'
    torch.save(saved, no_teacher)

    cfg = copy.deepcopy(trained['cfg'])
    cfg.model.teacher_ckpt = str(tmp_path / 'gone.pth')
    with pytest.raises(ConfigCheckError) as error:
        use_checkpoint_teacher(cfg, str(no_teacher))
    message = str(error.value)
    assert f"model.teacher_ckpt: checkpoint file '{tmp_path}/gone.pth' " \
        'does not exist' in message
    assert 'holds no teacher weights' in message
    assert "'architecture.', 'distiller.'" in message

    # With the file there, it is read as before.
    cfg.model.teacher_ckpt = trained['teacher_ckpt']
    assert not use_checkpoint_teacher(cfg, str(no_teacher))
    assert cfg.model.teacher_ckpt == trained['teacher_ckpt']
    # A checkpoint with the teacher makes the file unnecessary.
    assert use_checkpoint_teacher(cfg, str(trained['checkpoint']))
    assert cfg.model.teacher_ckpt is None


def test_exported_student_is_a_plain_mmpretrain_model(trained, tmp_path):
    import mmpretrain

    out = tmp_path / 'student.pth'
    export_tool([trained['checkpoint'], out])
    config = tmp_path / 'student.py'
    assert config.is_file()

    # Plain torch (no mgd_plugin, no MMEngine allow-list) loads it safely.
    proc = check(
        run([
            sys.executable, '-c', 'import sys, torch; '
            'c = torch.load(sys.argv[1], weights_only=True); '
            'print(sorted(c), len(c["state_dict"]))',
            str(out)
        ]))
    assert "['meta', 'state_dict']" in proc.stdout

    exported = torch.load(out, weights_only=True)
    distilled = torch.load(
        trained['checkpoint'], weights_only=True)['state_dict']
    student_keys = {
        k[len('architecture.'):]
        for k in distilled if k.startswith('architecture.')
    }
    assert set(exported['state_dict']) == student_keys
    for key, value in exported['state_dict'].items():
        assert torch.equal(value, distilled['architecture.' + key]), key
    assert exported['meta']['dataset_meta']['classes'] == ('class_0',
                                                           'class_1',
                                                           'class_2')

    # MMPretrain builds it from the config alone, and gives the
    # predictions of the distillation checkpoint's student.
    # MMPretrain's API in a fresh process runs in its own scope; other
    # tests in this process may have left 'mmrazor' as the current one.
    fresh_process_scope = DefaultScope.overwrite_default_scope('mmpretrain')
    with fresh_process_scope:
        model = mmpretrain.get_model(str(config), pretrained=str(out))
        dataloader = Runner.build_dataloader(
            Config.fromfile(config).test_dataloader)
    assert type(model).__name__ == 'ImageClassifier'
    scores, labels = student_predictions(model, dataloader)
    assert torch.equal(labels, trained['labels'])
    torch.testing.assert_close(scores, trained['scores'], rtol=0, atol=1e-6)

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = mmpretrain.ImageClassificationInferencer(
            str(config), pretrained=str(out))
        results = inferencer(trained['image_paths'], batch_size=8)
    torch.testing.assert_close(
        torch.stack([torch.as_tensor(r['pred_scores']) for r in results]),
        trained['scores'],
        rtol=0,
        atol=1e-6)
    assert results[0]['pred_class'].startswith('class_')

    assert len(results) == len(trained['labels']) == 24

    top1, _ = test_accuracy(config, out, tmp_path / 'test')
    assert top1 == pytest.approx(
        accuracy(trained['scores'], trained['labels']), abs=1e-4)


def test_export_refuses_a_non_distillation_checkpoint(trained, tmp_path):
    with pytest.raises(SystemExit) as error:
        export_tool([trained['teacher_ckpt'], tmp_path / 'student.pth'])
    message = str(error.value)
    assert 'is not a distillation checkpoint' in message
    assert "no 'architecture.' keys" in message
    assert "['backbone.', 'head.']" in message
    assert not (tmp_path / 'student.pth').exists()


def test_kd_checkpoint_exports_with_given_config(tmp_path):
    """A plain MMRazor SingleTeacherDistill checkpoint, written without a
    stored config: --config supplies it."""
    import mmpretrain
    from mmrazor.registry import MODELS

    cfg = Config.fromfile(KD_CONFIG)
    torch.manual_seed(0)
    algorithm = MODELS.build(copy.deepcopy(cfg.model))
    checkpoint = tmp_path / 'kd.pth'
    torch.save({'state_dict': algorithm.state_dict(), 'meta': {}}, checkpoint)

    with pytest.raises(SystemExit, match='stores no config'):
        export_tool([checkpoint, tmp_path / 'student.pth'])
    export_tool([checkpoint, tmp_path / 'student.pth', '--config', KD_CONFIG])
    model = mmpretrain.get_model(
        str(tmp_path / 'student.py'), pretrained=str(tmp_path / 'student.pth'))

    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    data = dict(inputs=list(images))
    algorithm.eval()
    model.eval()
    with torch.no_grad():
        expected = algorithm.student(
            algorithm.data_preprocessor(data)['inputs'], mode='tensor')
        actual = model(model.data_preprocessor(data)['inputs'], mode='tensor')
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_student_config_is_plain_mmpretrain():
    cfg = Config.fromfile(MGD_CONFIG)
    student = student_config(cfg)
    assert student.default_scope == 'mmpretrain'
    text = student.pretty_text
    for foreign in ('mmrazor', 'mmpretrain.', '_scope_', 'teacher',
                    'distiller', 'mgd_plugin', 'MatchingUpdateHook'):
        assert foreign not in text, foreign
    assert student.model.type == 'ImageClassifier'
    # The algorithm's preprocessor, in MMPretrain's own type.
    assert student.model.data_preprocessor == dict(
        type='ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64.0, 64.0, 64.0],
        to_rgb=True)
    # MMRazor's distillation val loop (which also runs the teacher) is
    # replaced by MMEngine's.
    assert 'type' not in student.val_cfg
    assert student.test_dataloader.dataset.type == 'CustomDataset'


def test_student_config_resolves_mmrazor_cfg_path():
    # MMRazor's KD configs name the student by a model-zoo config file.
    cfg = Config(
        dict(
            model=dict(
                _scope_='mmrazor',
                type='SingleTeacherDistill',
                architecture=dict(
                    cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py',
                    pretrained=False))))
    student = student_config(cfg)
    assert student.default_scope == 'mmpretrain'
    assert student.model.type == 'ImageClassifier'
    assert student.model.backbone.depth == 18
    assert student.model.data_preprocessor.num_classes == 1000
