"""check_config: the launch-time checks of tools/train.py and tools/test.py."""
import pytest
from mmengine.config import Config

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
