"""The compatibility layer (mgd_plugin/compat.py), each shim proven."""
import io
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

from conftest import REPO_ROOT, bare_python
from mgd_plugin import compat

NEW_TORCH = digit_version(torch.__version__) >= digit_version('2.6.0')


def python(code):
    return subprocess.run([sys.executable, '-c', code],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)


def bare_python_run(code):
    """Python without site-packages' .pth files (no start-up hook)."""
    return subprocess.run(
        bare_python() + ['-c', code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300)


@pytest.mark.parametrize('order', [
    'import mgd_plugin, mmrazor.models, mmrazor.engine',
    'import mmrazor, mmrazor.registry; import mgd_plugin; '
    'import mmrazor.models, mmrazor.engine',
])
def test_mmrazor_imports_whatever_the_import_order(order):
    proc = python(order + '; print("imported")')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'imported' in proc.stdout


@pytest.mark.skipif(
    digit_version(torch.__version__) < digit_version('2.1.0'),
    reason='upstream MMRazor imports by itself before torch 2.1')
def test_mmrazor_models_fails_without_the_shim_and_imports_with_it_alone():
    # Without any shim, the import dies where the shim acts: building the
    # quantization backend tables from torch internals that are gone. Bare:
    # an installed mgd_plugin's start-up hook would apply the shim.
    proc = bare_python_run('import mmrazor.models')
    assert proc.returncode != 0
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith('ImportError'), proc.stderr[-3000:]
    assert 'mmrazor/structures/quantization/backend_config/' in proc.stderr
    # The quantization shim alone (compat.py loaded as a file, so that no
    # other shim runs) is enough for the import.
    proc = bare_python_run('import importlib.util, sys\n'
                           'spec = importlib.util.spec_from_file_location(\n'
                           '    "standalone_compat", "mgd_plugin/compat.py")\n'
                           'compat = importlib.util.module_from_spec(spec)\n'
                           'spec.loader.exec_module(compat)\n'
                           'assert compat._shim_mmrazor_quantization()\n'
                           'import mmrazor.models, mmrazor.engine\n'
                           'assert "mgd_plugin" not in sys.modules\n'
                           'print("imported")\n')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'imported' in proc.stdout


def test_quantization_fails_clearly_when_used():
    from mmrazor.structures.quantization import (BackendConfigs,
                                                 get_native_backend_config)
    with pytest.raises(RuntimeError, match='quantization is unavailable'):
        BackendConfigs['native']
    with pytest.raises(RuntimeError, match='mmrazor#632'):
        get_native_backend_config()


def test_quantizer_build_fails_clearly():
    from mmengine.registry import DefaultScope
    from mmrazor.registry import MODELS

    # In MMRazor's scope, as its configs build (another test may have left
    # MMPretrain's as the default).
    with pytest.raises(RuntimeError, match='quantization is unavailable'), \
            DefaultScope.overwrite_default_scope('mmrazor'):
        MODELS.build(
            dict(
                type='mmrazor.TorchNativeQuantizer',
                global_qconfig=dict(
                    w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
                    a_observer=dict(
                        type='mmrazor.MovingAverageMinMaxObserver'),
                    w_fake_quant=dict(type='mmrazor.FakeQuantize'),
                    a_fake_quant=dict(type='mmrazor.FakeQuantize'),
                    w_qscheme=dict(qdtype='qint8', bit=8, is_symmetry=True),
                    a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=True))))


def _save(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_getattr_is_never_allow_listed():
    allowed = torch.serialization.get_safe_globals()
    assert getattr not in allowed
    assert not any(getattr(g, '__name__', None) == 'getattr' for g in allowed)


def test_message_hub_round_trips_with_safe_loading():
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', 3)
    buffer = _save({'message_hub': hub.state_dict()})
    assert 'builtins.getattr' not in (
        torch.serialization.get_unsafe_globals_in_checkpoint(buffer))
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    history = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer)
    assert history.mean() == pytest.approx(1.0)
    assert history.statistics('max') == 1.5
    assert loaded['message_hub']['runtime_info']['iter'] == 3


@pytest.mark.skipif(not NEW_TORCH, reason='safe loading is torch >= 2.6')
def test_legacy_checkpoint_is_refused_with_a_conversion_hint(tmp_path):
    legacy = tmp_path / 'legacy.pth'
    history = HistoryBuffer([1.0, 2.0], [1, 1])
    # What plain MMEngine 0.10.7 writes: the statistics functions in state.
    state = dict(
        history.__dict__,
        statistics_methods=dict(HistoryBuffer._statistics_methods))

    class Legacy:

        def __reduce__(self):
            return (HistoryBuffer.__new__, (HistoryBuffer, ), state)

    torch.save({'meta': {}, 'message_hub': {'log': Legacy()}}, legacy)
    with pytest.raises(RuntimeError, match='convert_legacy_checkpoint.py'):
        CheckpointLoader.load_checkpoint(str(legacy), map_location='cpu')

    converted = tmp_path / 'converted.pth'
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools/misc/convert_legacy_checkpoint.py'),
        str(legacy),
        str(converted)
    ],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = CheckpointLoader.load_checkpoint(
        str(converted), map_location='cpu')
    assert loaded['message_hub']['log'].mean() == pytest.approx(1.5)


def test_unrelated_unpickling_errors_pass_through(tmp_path, capsys):
    path = tmp_path / 'evil.pth'

    class Evil:

        def __reduce__(self):
            return (print, ('owned', ))

    torch.save({'x': Evil()}, path)
    if NEW_TORCH:
        with pytest.raises(pickle.UnpicklingError, match='print'):
            CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
        assert 'owned' not in capsys.readouterr().out
    else:
        # Before torch 2.6 MMEngine loads with weights_only=False; the shim
        # stays off and loading is upstream's.
        assert 'checkpoint_safe_load' not in compat.APPLIED
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
        assert 'owned' in capsys.readouterr().out


@pytest.mark.parametrize('message, converted', [
    ('Weights only load failed ... GLOBAL builtins.getattr', True),
    ('Weights only load failed ... GLOBAL builtins.print', False),
    ('invalid load key', False),
])
def test_legacy_hint_only_for_the_getattr_refusal(message, converted):
    # The wrapper itself, on every torch version.
    def refusing_loader(filename, map_location):
        raise pickle.UnpicklingError(message)

    load = compat._with_legacy_hint(refusing_loader)
    expected = RuntimeError if converted else pickle.UnpicklingError
    with pytest.raises(expected) as info:
        load('old.pth', 'cpu')
    if converted:
        assert 'old.pth' in str(info.value)
        assert 'convert_legacy_checkpoint.py old.pth' in str(info.value)
        assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    else:
        assert str(info.value) == message
    assert compat._with_legacy_hint(lambda f, m: (f, m))('a',
                                                         'cpu') == ('a', 'cpu')


def _patch_points():
    """Every upstream attribute a shim replaces with a wrapper."""
    from mmengine.dist import utils as dist_utils
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import CheckpointHook
    from mmengine.model import MMDistributedDataParallel
    return dict(
        put=LocalBackend.put,
        save=CheckpointHook._save_checkpoint_with_step,
        loader=CheckpointLoader._schemes[''],
        init_dist=dist_utils._init_dist_pytorch,
        ddp_init=MMDistributedDataParallel.__init__,
        getstate=HistoryBuffer.__getstate__,
        quantization_finders=sum(
            isinstance(f, compat._QuantizationStubLoader)
            for f in sys.meta_path))


def test_the_shims_active_on_this_version():
    applied = set(compat.APPLIED)
    assert {'cpu_distributed', 'atomic_checkpoint_write'} <= applied
    assert ('checkpoint_safe_load' in applied) == NEW_TORCH
    assert ('history_buffer_pickle' in applied) == NEW_TORCH
    assert compat.apply() == compat.APPLIED


def test_reapplying_wraps_nothing_twice(monkeypatch):
    # As if the module were imported afresh (a reload, a second copy):
    # every shim runs again, and must find its own work already done.
    before = _patch_points()
    monkeypatch.setattr(compat, 'APPLIED', [])
    compat.apply()
    assert _patch_points() == before
    assert before['quantization_finders'] <= 1


def test_interrupted_local_write_keeps_the_previous_file(
        tmp_path, monkeypatch):
    """The atomic_checkpoint_write shim's effect on MMEngine's file I/O."""
    from mmengine.fileio import get_file_backend
    from mmengine.hooks import CheckpointHook
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'complete')
    backend = get_file_backend(str(target))

    def killed(fd):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'half-written', str(target))
    assert target.read_bytes() == b'complete'
    assert os.listdir(tmp_path) == ['epoch_1.pth']
    monkeypatch.undo()
    backend.put(b'new', str(target))
    assert target.read_bytes() == b'new'
    assert os.listdir(tmp_path) == ['epoch_1.pth']
    assert (CheckpointHook._save_checkpoint_with_step
            is compat._save_checkpoint_with_step)


def test_only_the_temporaries_of_dead_writers_are_removed(tmp_path):
    """A write killed before its rename (SIGKILL) leaves its temporary;
    the next checkpoint save removes it (tests/test_resume.py), and only
    it."""
    host = socket.gethostname()
    dead = subprocess.Popen(['true'])
    dead.wait()
    live = subprocess.Popen(['sleep', '60'])
    try:
        names = dict(
            dead=f'.epoch_1.pth.{dead.pid}@{host}.part',
            live=f'.epoch_1.pth.{live.pid}@{host}.part',
            other_host=f'.epoch_1.pth.{dead.pid}@elsewhere.part',
            not_ours='.epoch_1.pth.part')
        for name in names.values():
            (tmp_path / name).write_bytes(b'partial')
        (tmp_path / 'epoch_2.pth').write_bytes(b'complete')
        compat._remove_dead_temporaries(str(tmp_path))
    finally:
        live.kill()
        live.wait()
    assert sorted(os.listdir(tmp_path)) == sorted(
        [names['live'], names['other_host'], names['not_ours'], 'epoch_2.pth'])


def test_mmpretrain_base_configs_resolve_without_pkg_resources(tmp_path):
    """The package_lookup shim's effect (or upstream's, where it is off)."""
    import mmpretrain
    from mmengine.config import Config
    from mmengine.utils import get_installed_path
    assert get_installed_path('mmpretrain') == osp.dirname(mmpretrain.__file__)
    path = tmp_path / 'config.py'
    path.write_text("_base_ = ['mmpretrain::_base_/default_runtime.py']\n")
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmpretrain'


def test_cpu_ddp_wrapper_drops_device_ids():
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    store = dist.HashStore()
    dist.init_process_group('gloo', store=store, rank=0, world_size=1)
    try:
        wrapped = MMDistributedDataParallel(
            module=torch.nn.Linear(2, 2), device_ids=[0])
        assert wrapped.device_ids is None
    finally:
        dist.destroy_process_group()


def test_mmrazor_turns_every_inplace_activation_off():
    from mmcv.cnn import ConvModule
    from mmrazor.models.algorithms.base import BaseAlgorithm
    model = torch.nn.Sequential(
        ConvModule(3, 4, 3, norm_cfg=dict(type='BN')),  # ReLU inside
        torch.nn.Sequential(torch.nn.ReLU(inplace=True)),
        torch.nn.ReLU6(inplace=True))
    BaseAlgorithm.set_module_inplace_false(None, model, 'model')
    activations = [
        m for m in model.modules()
        if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6))
    ]
    assert len(activations) == 3
    assert not any(m.inplace for m in activations)


def test_recorded_pre_relu_features_stay_negative():
    """What the shim is for: a recorder on a ReLU's input sees the
    pre-activation tensor inside an MMRazor algorithm."""
    from mmrazor.models.algorithms import SingleTeacherDistill
    teacher = dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='ResNet_CIFAR',
            depth=18,
            base_channels=4,
            stem_channels=4,
            out_indices=(3, )))
    algorithm = SingleTeacherDistill(
        architecture=teacher,
        teacher=teacher,
        distiller=dict(
            type='ConfigurableDistiller',
            teacher_recorders=dict(
                r=dict(type='ModuleInputs', source='backbone.layer1.1.relu'))))
    algorithm.eval()
    recorders = algorithm.distiller.teacher_recorders
    with torch.no_grad(), recorders:
        algorithm.teacher(torch.randn(2, 3, 16, 16), mode='tensor')
    pre_relu = recorders.get_recorder('r').get_record_data(
        record_idx=1, data_idx=0)
    assert (pre_relu < 0).any()
