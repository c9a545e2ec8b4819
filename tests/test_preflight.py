"""check_config: the launch-time checks of tools/train.py and tools/test.py."""
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import REPO_ROOT
from mgd_plugin.utils import ConfigCheckError, check_config


def write_config(tmp_path, text):
    path = tmp_path / 'config.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def test_names_every_missing_file_by_its_key(tmp_path):
    cfg = write_config(
        tmp_path, "model = dict(type='X', teacher_ckpt='/no/teacher.pth')\n"
        "load_from = '/no/model.pth'\n"
        "custom_hooks = [dict(type='H', dataloader=dict(dataset=dict(\n"
        "    type='D', data_root='/no/data')))]\n")
    with pytest.raises(ConfigCheckError) as info:
        check_config(cfg)
    message = str(info.value)
    assert "model.teacher_ckpt: checkpoint file '/no/teacher.pth'" in message
    assert "load_from: checkpoint file '/no/model.pth'" in message
    assert ("custom_hooks[0].dataloader.dataset.data_root: directory "
            "'/no/data' does not exist") in message


def test_remote_checkpoints_are_left_to_mmengine(tmp_path):
    cfg = write_config(
        tmp_path, "model = dict(type='X', teacher_ckpt="
        "'https://download.openmmlab.com/x.pth')\n")
    check_config(cfg)


def test_a_config_variable_overridden_where_it_is_used_is_not_checked(
        tmp_path):
    # The recipe's form: a variable above model. `--cfg-options
    # model.teacher_ckpt=...` changes the copy in model, not the variable.
    teacher = tmp_path / 'teacher.pth'
    teacher.write_bytes(b'')
    cfg = write_config(
        tmp_path, "teacher_ckpt = 'work_dirs/not/trained/yet.pth'\n"
        "model = dict(type='X', teacher_ckpt=teacher_ckpt)\n")
    with pytest.raises(ConfigCheckError, match='model.teacher_ckpt'):
        check_config(cfg)
    cfg.merge_from_dict({'model.teacher_ckpt': str(teacher)})
    check_config(cfg)


def test_sections_restrict_the_check(tmp_path):
    cfg = write_config(
        tmp_path, "model = dict(type='X')\n"
        "train_dataloader = dict(dataset=dict(type='D', data_root='/no'))\n")
    check_config(cfg, sections=('model', 'test_dataloader'))
    with pytest.raises(ConfigCheckError, match='train_dataloader'):
        check_config(cfg)


# --------------------------------------------------------------------------
# The files each dataset type reads
# --------------------------------------------------------------------------
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def dataset_config(tmp_path, **dataset):
    """A config with ``dataset`` as the training set and as the dataset of
    an MGD matching hook."""
    text = (f'train_dataloader = dict(dataset=dict(**{dataset!r}))\n'
            'custom_hooks = [dict(type="MatchingUpdateHook", '
            f'dataloader=dict(dataset=dict(**{dataset!r})))]\n')
    return write_config(tmp_path, text)


def problems(cfg):
    with pytest.raises(ConfigCheckError) as info:
        check_config(cfg)
    return str(info.value)


def test_fashion_mnist_needs_the_four_idx_files(tmp_path):
    root = tmp_path / 'fm'
    root.mkdir()
    for name in IDX_FILES[:2]:
        (root / name).write_bytes(b'')
    cfg = dataset_config(
        tmp_path, type='FashionMNIST', data_root=str(root), download=False)
    message = problems(cfg)
    for key in ('train_dataloader.dataset', 'custom_hooks[0].dataloader.'
                'dataset'):
        assert (f"{key}: FashionMNIST reads the un-gzipped IDX files "
                f"{list(IDX_FILES)} from {str(root)!r}; missing there: "
                f"{list(IDX_FILES[2:])}") in message
    for name in IDX_FILES[2:]:
        (root / name).write_bytes(b'')
    check_config(cfg)


def test_a_dataset_that_downloads_itself_needs_no_files(tmp_path):
    cfg = dataset_config(
        tmp_path, type='FashionMNIST', data_root=str(tmp_path / 'not' / 'yet'))
    check_config(cfg)


def write_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'not decoded by the check')


def test_imagenet_needs_a_list_file_or_its_1000_class_folders(tmp_path):
    root = tmp_path / 'imagenet'
    (root / 'train').mkdir(parents=True)
    cfg = dataset_config(
        tmp_path, type='ImageNet', data_root=str(root), split='train')
    message = problems(cfg)
    folder = str(root / 'train')
    assert (f'train_dataloader.dataset: ImageNet found no images: '
            f'{folder!r} has no class folders') in message
    assert f'meta/train.txt under {str(root)!r}' in message

    write_image(root / 'train' / 'n01440764' / 'a.JPEG')
    write_image(root / 'train' / 'n01443537' / 'b.JPEG')
    assert (f'{folder!r} has 2 class folders; the dataset names 1000 '
            'classes') in problems(cfg)

    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text('n01440764/a.JPEG 0\n')
    check_config(cfg)


def test_class_folders_need_images(tmp_path):
    # CUB-200 in the MGD reference's layout, read by CustomDataset.
    root = tmp_path / 'cub200'
    (root / 'train' / '001.Black_footed_Albatross').mkdir(parents=True)
    cfg = dataset_config(
        tmp_path,
        type='CustomDataset',
        data_root=str(root),
        data_prefix='valid')
    assert (f"CustomDataset found no images: the image folder "
            f"{str(root / 'valid')!r} does not exist") in problems(cfg)

    cfg = dataset_config(
        tmp_path,
        type='CustomDataset',
        data_root=str(root),
        data_prefix='train')
    assert 'no image files (' in problems(cfg)
    assert f"under {str(root / 'train')!r}" in problems(cfg)
    write_image(root / 'train' / '001.Black_footed_Albatross' / 'x.jpg')
    check_config(cfg)


def test_cub_needs_its_official_files(tmp_path):
    root = tmp_path / 'CUB_200_2011'
    root.mkdir()
    (root / 'images.txt').write_text('')
    cfg = dataset_config(
        tmp_path, type='CUB', data_root=str(root), split='train')
    assert (f"from the official CUB_200_2011 layout in {str(root)!r}; "
            "missing there: ['image_class_labels.txt', "
            "'train_test_split.txt', 'images/']") in problems(cfg)


def test_train_tool_stops_before_building_anything(tmp_path, monkeypatch):
    """A shipped recipe on an empty data root: tools/train.py names every
    missing file and builds nothing."""
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(REPO_ROOT, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def no_runner(*args, **kwargs):
        raise AssertionError('the runner was built')

    monkeypatch.setattr(Runner, 'from_cfg', no_runner)
    monkeypatch.setattr(Runner, '__init__', no_runner)
    root = tmp_path / 'cub200'
    root.mkdir()
    config = osp.join(REPO_ROOT, 'configs', 'mgd',
                      'mgd-amp_resnet50-mobilenet-v2_4xb16_cub.py')
    options = [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                       'custom_hooks.0.dataloader')
    ]
    with pytest.raises(ConfigCheckError) as info:
        tool.main([
            config, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *options
        ])
    message = str(info.value)
    assert "model.teacher_ckpt: checkpoint file 'work_dirs/" in message
    for key, folder in (('train_dataloader', 'train'), ('val_dataloader',
                                                        'valid'),
                        ('custom_hooks[0].dataloader', 'train')):
        assert (f'{key}.dataset: CustomDataset found no images: the image '
                f'folder {str(root / folder)!r} does not exist') in message
