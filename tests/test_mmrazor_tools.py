"""MMRazor's own tools/train.py trains an MGD config once mgd_plugin is
installed, with nothing changed in MMRazor.

MMRazor's packaged ``tools/train.py`` (what ``mim train mmrazor`` runs)
imports all of MMRazor before it reads the config, so the config's
``custom_imports`` come too late for the quantization shim. The start-up
hook that setup.py installs into site-packages (``mgd_plugin_startup.pth``)
puts it in place instead.

The tests install a copy of this checkout with pip, as ``pip install .`` and
``pip install -e .`` lay it out, into a throwaway directory, and start Python
on that directory as on its site-packages (``conftest.bare_python``). The
test environment's own mgd_plugin and its ``.pth`` files take no part, so
what runs is this checkout as pip installs it.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import mmrazor
import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT, bare_python, save_model_checkpoint

MGD_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                      'mgd_tiny_resnet.py')
MMRAZOR_TRAIN = osp.join(
    osp.dirname(mmrazor.__file__), '.mim', 'tools', 'train.py')
# Left out of the copy: not part of the package, and possibly large.
NOT_COPIED = {
    '.git', '.venv', '.pytest_cache', 'build', 'dist', 'data', 'work_dirs'
}


def _ignore(directory, names):
    return [
        name for name in names
        if (osp.samefile(directory, REPO_ROOT) and name in NOT_COPIED)
        or name == '__pycache__' or name.endswith('.egg-info')
    ]


def run(cmd, cwd, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    # The installed copy, not the checkout, must provide mgd_plugin.
    env.pop('PYTHONPATH', None)
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def pip_install(tmp_path_factory, editable):
    """``pip install [-e] .`` of a copy of the checkout into a new prefix.

    Returns:
        tuple[str, str]: the copy of the checkout and the site-packages
        directory of the prefix.
    """
    source = str(tmp_path_factory.mktemp('checkout') / 'mgd_plugin')
    shutil.copytree(REPO_ROOT, source, ignore=_ignore)
    prefix = tmp_path_factory.mktemp('prefix')
    # A prefix, not --target: --target puts data files beside the packages,
    # which would hide a .pth installed to the wrong place.
    # --ignore-installed: never uninstall the test environment's mgd_plugin.
    # --no-index, --no-build-isolation: download nothing.
    cmd = [
        sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
        '--no-index', '--no-build-isolation', '--ignore-installed', '--prefix',
        str(prefix)
    ] + (['--editable'] if editable else []) + [source]
    check(run(cmd, cwd=source))
    dist_info = list(prefix.glob('**/mgd_plugin-*.dist-info'))
    assert len(dist_info) == 1, dist_info
    return source, str(dist_info[0].parent)


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    return pip_install(tmp_path_factory, editable=False)


@pytest.fixture(scope='module')
def installed_editable(tmp_path_factory):
    return pip_install(tmp_path_factory, editable=True)


@pytest.mark.parametrize('install, hook_home', [
    ('installed', 'target'),
    ('installed_editable', 'source'),
])
def test_startup_hook_is_installed_and_imports_nothing(request, tmp_path,
                                                       install, hook_home):
    source, target = request.getfixturevalue(install)
    code = ('import json, sys, _mgd_plugin_startup as hook; '
            'print(json.dumps(dict('
            'first=type(sys.meta_path[0]).__name__, file=hook.__file__, '
            'heavy=[m for m in ("torch", "mmengine", "mmrazor", "mgd_plugin",'
            ' "mgd_plugin.compat") if m in sys.modules])))')
    proc = check(run(bare_python(target) + ['-c', code], cwd=str(tmp_path)))
    state = json.loads(proc.stdout.splitlines()[-1])
    assert state['first'] == 'StartupHook'
    # A regular install runs its own copy; an editable one the checkout's.
    home = target if hook_home == 'target' else source
    assert state['file'] == osp.join(home, '_mgd_plugin_startup.py')
    assert state['heavy'] == []


def test_hook_applies_the_startup_shims_without_importing_the_package(
        tmp_path, installed):
    # The package imports mmrazor.models, which cannot import at that point
    # (MMRazor is half imported); the training run below proves that a
    # later `import mgd_plugin` works on from there.
    source, target = installed
    # Like the real configs: a base found through MMEngine's package look-up,
    # which needs the package_lookup shim where pkg_resources is gone.
    config = tmp_path / 'uses_mmpretrain_base.py'
    config.write_text("_base_ = ['mmpretrain::_base_/default_runtime.py']\n")
    code = '\n'.join([
        'import sys',
        'from importlib.util import find_spec',
        'from mmengine.config import Config',
        # What MMRazor's import of its quantization tables asks.
        "spec = find_spec('mmrazor.structures.quantization.backend_config')",
        "compat = sys.modules['mgd_plugin.compat']",
        "assert 'mgd_plugin' not in sys.modules",
        "assert type(spec.loader).__name__ == '_QuantizationStubLoader'",
        "assert compat.APPLIED == ['mmrazor_quantization', 'package_lookup'] "
        "or find_spec('pkg_resources'), compat.APPLIED",
        # What MMRazor's tools/train.py does next, before custom_imports.
        f'print(Config.fromfile({str(config)!r}).default_scope)',
        'print(compat.__file__)',
    ])
    proc = check(run(bare_python(target) + ['-c', code], cwd=str(tmp_path)))
    default_scope, compat_file = proc.stdout.splitlines()[-2:]
    assert default_scope == 'mmpretrain'
    assert compat_file == osp.join(target, 'mgd_plugin', 'compat.py')


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(MGD_CONFIG).teacher)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    return save_model_checkpoint(teacher, str(path))


def test_mmrazor_train_tool_trains_mgd(tmp_path, tiny_image_folder,
                                       teacher_ckpt, installed):
    source, target = installed
    assert osp.isfile(MMRAZOR_TRAIN), 'mmrazor ships no .mim/tools/train.py'
    work_dir = tmp_path / 'work'
    options = [
        f'{loader}.dataset.data_root={tiny_image_folder}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                       'custom_hooks.0.dataloader')
    ] + [f'model.teacher_ckpt={teacher_ckpt}', 'train_cfg.max_epochs=1']
    proc = check(
        run(bare_python(target) + [
            MMRAZOR_TRAIN, MGD_CONFIG, '--work-dir',
            str(work_dir), '--cfg-options'
        ] + options,
            cwd=str(tmp_path)))
    log = proc.stdout + proc.stderr
    assert 'MGD matching for epoch 1' in log
    saved = torch.load(work_dir / 'epoch_1.pth', map_location='cpu')
    assert saved['meta']['epoch'] == 1
    reducers = [key for key in saved['state_dict'] if 'reducer' in key]
    assert reducers, sorted(saved['state_dict'])[:20]
