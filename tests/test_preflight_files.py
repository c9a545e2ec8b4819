"""check_config on annotation files and ``init_cfg`` checkpoints.

The launch-time check must name the config key of a missing file, and
must not stop a config whose files exist or are not local.
"""
import pytest
from mmengine.config import Config
from mmengine.model.weight_init import PretrainedInit

from mgd_plugin.utils import ConfigCheckError, check_config


def write_config(tmp_path, text):
    path = tmp_path / 'config.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def problems(cfg):
    """The reported problems, one per line, or [] when the check passes."""
    try:
        check_config(cfg)
    except ConfigCheckError as error:
        return [line.strip() for line in str(error).splitlines()[1:]]
    return []


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / 'data'
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'train.txt').write_text('a.png 0\n')
    return root


def dataloader(key, **dataset):
    fields = ', '.join(f'{k}={v!r}' for k, v in dataset.items())
    return f"{key} = dict(dataset=dict(type='CustomDataset', {fields}))\n"


def test_missing_ann_file_is_named_with_its_full_path(tmp_path, data_root):
    cfg = write_config(
        tmp_path,
        dataloader(
            'train_dataloader',
            data_root=str(data_root),
            ann_file='meta/train.txt') + dataloader(
                'val_dataloader',
                data_root=str(data_root),
                ann_file='meta/val.txt'))
    assert problems(cfg) == [
        f"val_dataloader.dataset.ann_file: file "
        f"'{data_root / 'meta' / 'val.txt'}' does not exist"
    ]


def test_ann_file_without_data_root_and_absolute(tmp_path, data_root):
    present = str(data_root / 'meta' / 'train.txt')
    cfg = write_config(
        tmp_path,
        dataloader('train_dataloader', ann_file=present) +
        dataloader('val_dataloader', ann_file='/no/val.txt') +
        # An absolute ann_file is not under data_root (os.path.join).
        dataloader(
            'test_dataloader', data_root=str(data_root), ann_file=present))
    assert problems(cfg) == [
        "val_dataloader.dataset.ann_file: file '/no/val.txt' does not exist"
    ]


def test_empty_ann_file_means_a_folder_dataset(tmp_path, data_root):
    # MMPretrain's CustomDataset default: scan data_root's class folders.
    (data_root / 'class_0').mkdir()
    (data_root / 'class_0' / 'a.png').write_bytes(b'')
    cfg = write_config(
        tmp_path,
        dataloader('train_dataloader', data_root=str(data_root), ann_file=''))
    assert problems(cfg) == []


def test_ann_file_of_a_hook_and_a_wrapped_dataset(tmp_path, data_root):
    cfg = write_config(
        tmp_path, "train_dataloader = dict(dataset=dict(type='RepeatDataset', "
        "times=2, dataset=dict(type='CustomDataset', "
        f"data_root={str(data_root)!r}, ann_file='meta/missing.txt')))\n"
        "custom_hooks = [dict(type='MatchingUpdateHook', dataloader=dict("
        "dataset=dict(type='CustomDataset', "
        f"data_root={str(data_root)!r}, ann_file='meta/nope.txt')))]\n")
    assert problems(cfg) == [
        f"train_dataloader.dataset.dataset.ann_file: file "
        f"'{data_root / 'meta' / 'missing.txt'}' does not exist",
        f"custom_hooks[0].dataloader.dataset.ann_file: file "
        f"'{data_root / 'meta' / 'nope.txt'}' does not exist",
    ]


STUDENT = ("dict(type='ImageClassifier', backbone=dict(type='ResNet', "
           "depth=18, init_cfg={init_cfg}))")


@pytest.mark.parametrize(
    'init_type', ["'Pretrained'", "'mmengine.Pretrained'", 'PretrainedInit'])
def test_missing_init_cfg_checkpoint_is_named(tmp_path, init_type):
    init_cfg = (f"dict(type={init_type}, checkpoint='/no/backbone.pth', "
                "prefix='backbone.')")
    cfg = write_config(
        tmp_path, 'from mmengine.model.weight_init import PretrainedInit\n'
        'model = dict(type="SingleTeacherDistill", architecture=' +
        STUDENT.format(init_cfg=init_cfg) + ')\n')
    assert problems(cfg) == [
        "model.architecture.backbone.init_cfg.checkpoint: checkpoint file "
        "'/no/backbone.pth' does not exist"
    ]


def test_init_cfg_list_names_the_position(tmp_path):
    init_cfg = ("[dict(type='Kaiming', layer='Conv2d'), "
                "dict(type='Pretrained', checkpoint='/no/b.pth')]")
    cfg = write_config(tmp_path,
                       'model = ' + STUDENT.format(init_cfg=init_cfg) + '\n')
    assert problems(cfg) == [
        "model.backbone.init_cfg[1].checkpoint: checkpoint file "
        "'/no/b.pth' does not exist"
    ]


def test_present_remote_and_non_pretrained_checkpoints_pass(tmp_path):
    present = tmp_path / 'backbone.pth'
    present.write_bytes(b'')
    for init_cfg in [
            f"dict(type='Pretrained', checkpoint={str(present)!r})",
            "dict(type='Pretrained', checkpoint='torchvision://resnet18')",
            "dict(type='Pretrained', checkpoint='https://x.org/r18.pth')",
            # Only Pretrained reads its `checkpoint`.
            "dict(type='Other', checkpoint='/no/b.pth')",
    ]:
        cfg = write_config(
            tmp_path, 'model = ' + STUDENT.format(init_cfg=init_cfg) + '\n')
        assert problems(cfg) == [], init_cfg


def test_checkpoint_hook_is_not_a_checkpoint_file(tmp_path):
    # default_hooks.checkpoint is a hook config, not a path.
    cfg = write_config(
        tmp_path, "default_hooks = dict(checkpoint=dict("
        "type='CheckpointHook', interval=1, out_dir='/no/dir'))\n")
    assert problems(cfg) == []


def test_pretrained_class_is_recognised_through_subclasses(tmp_path):

    class LocalPretrained(PretrainedInit):
        pass

    cfg = Config(
        dict(
            model=dict(
                type='X',
                init_cfg=dict(type=LocalPretrained, checkpoint='/no/c.pth'))))
    assert problems(cfg) == [
        "model.init_cfg.checkpoint: checkpoint file '/no/c.pth' does not "
        'exist'
    ]


def test_pretrained_path_is_checked_and_a_boolean_is_not(tmp_path):
    cfg = write_config(
        tmp_path, "model = dict(type='X', backbone=dict(type='B', "
        "pretrained=True), neck=dict(type='N', pretrained='/no/n.pth'))\n")
    assert problems(cfg) == [
        "model.neck.pretrained: checkpoint file '/no/n.pth' does not exist"
    ]
