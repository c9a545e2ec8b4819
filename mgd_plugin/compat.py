"""Compatibility shims that let MMRazor 1.0 and MMEngine 0.10 run on current
PyTorch.

:func:`apply` is called once by ``import mgd_plugin``. Every shim checks the
installed versions (or the behaviour it repairs) and does nothing where it is
not needed, so upgrading an upstream package that fixes a problem switches
the matching shim off by itself.

This module must stay importable on its own, without ``mgd_plugin``'s
``__init__`` (no imports from the package, only the standard library, torch
and MMEngine): the start-up hook ``_mgd_plugin_startup`` loads it while
MMRazor is half-way through importing itself, when the package (which
imports ``mmrazor.models``) cannot be imported yet. See
:func:`startup_find_spec`.

Shims
-----
``mmrazor_quantization``
    MMRazor 1.0.0 builds its quantization backend tables at import time from
    torch internals that were removed in torch 2.1 (open-mmlab/mmrazor#632),
    so ``import mmrazor.models`` fails. The backend-config module is replaced
    by one exporting the same names; quantization fails with a clear
    :class:`RuntimeError` when it is used, everything else imports and works.
    Installed by ``import mgd_plugin``, or earlier by the start-up hook when
    MMRazor is imported first (MMRazor's own ``tools/train.py``).
``mmrazor_inplace_walk``
    MMRazor algorithms turn in-place activations off so that recorders keep
    pre-activation tensors, but ``BaseAlgorithm.set_module_inplace_false``
    only descends into ``_modules`` when it is an ``OrderedDict`` (a plain
    ``dict`` in current torch) and stops at any module with an ``inplace``
    attribute (mmcv's ``ConvModule``, whose activation stays in place). It
    changed nothing, and recorded "pre-ReLU" features were post-ReLU. It is
    replaced by a walk over every submodule.
``checkpoint_safe_load``
    torch >= 2.6 loads with ``weights_only=True``. The non-tensor types that
    MMEngine writes into a checkpoint (its ``HistoryBuffer`` and the NumPy
    arrays, scalars and dtypes inside it) are allow-listed.
    ``builtins.getattr`` is deliberately *not*: it would let a crafted file
    reach any callable.
``history_buffer_pickle``
    MMEngine pickles ``HistoryBuffer._statistics_methods`` (functions, stored
    by pickle as ``getattr(HistoryBuffer, 'min')``). They are class-level
    registrations, so the instance state is written without them and they are
    restored from the class on load. Checkpoints written before this shim are
    refused with a message that says how to convert them once
    (``tools/misc/convert_legacy_checkpoint.py``).
``cpu_distributed``
    On a machine without an accelerator, MMEngine's ``pytorch`` launcher
    calls ``torch.cuda.set_device`` and the runner passes ``device_ids`` to
    DDP; both fail. There, ``nccl`` becomes ``gloo`` and CPU modules are
    wrapped without ``device_ids``.
``package_lookup``
    MMEngine finds ``mmpretrain::``/``mmrazor::`` base configs through
    ``pkg_resources``, which setuptools >= 81 no longer ships. Without it,
    the same look-ups are done with ``importlib.metadata``.
``atomic_checkpoint_write``
    MMEngine writes files in place; a run killed while saving leaves a
    truncated ``epoch_N.pth``. Local writes go to a temporary file that is
    renamed over the target only once complete. ``CheckpointHook`` also
    deletes the oldest kept checkpoint *before* writing the new one and
    rewrites ``last_checkpoint`` in place, so with ``max_keep_ckpts=1`` a kill
    while saving left no checkpoint at all, and a kill at the wrong moment an
    empty pointer that ``--resume`` cannot use. The hook's save is reordered:
    checkpoint, then pointer (atomically), then pruning; the checkpoint to
    prune stays listed in the saved ``keep_ckpt_ids`` until it is deleted,
    so that a run killed before pruning prunes it on resume. A temporary is
    named after its writer (``.<target>.<pid>@<host>.part``); a kill
    (SIGKILL) before the rename leaves it, and the next checkpoint save
    removes those of this host's dead writers from the work and checkpoint
    directories.
"""
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import pickle
import re
import socket
import sys
from typing import Iterable, List, Optional

import torch
from mmengine.utils import digit_version

APPLIED: List[str] = []
"""Names of the shims that :func:`apply` installed in this process."""

QUANT_BACKEND_MODULE = 'mmrazor.structures.quantization.backend_config'


def _torch_at_least(version: str) -> bool:
    return digit_version(torch.__version__) >= digit_version(version)


def _dist_version(name: str):
    try:
        return digit_version(importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------
# MMRazor quantization tables
# --------------------------------------------------------------------------
def _quantization_unavailable(*args, **kwargs):
    raise RuntimeError(
        'MMRazor quantization is unavailable with torch '
        f'{torch.__version__}: mmrazor 1.0.0 builds its quantization backend '
        'configs from torch internals that were removed in torch 2.1 '
        '(open-mmlab/mmrazor#632). mgd_plugin keeps distillation, pruning and '
        'NAS working; for quantization use torch < 2.1.')


class _UnavailableBackendConfigs(dict):
    """Stands in for ``mmrazor.structures.quantization.BackendConfigs``."""

    def __getitem__(self, key):
        _quantization_unavailable()

    get = __getitem__


class _QuantizationStubLoader(importlib.abc.MetaPathFinder,
                              importlib.abc.Loader):

    def find_spec(self, fullname, path, target=None):
        if fullname != QUANT_BACKEND_MODULE:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.BackendConfigs = _UnavailableBackendConfigs()
        names = ['BackendConfigs']
        for backend in ('native', 'academic', 'openvino', 'tensorrt'):
            for suffix in ('', '_dict'):
                name = f'get_{backend}_backend_config{suffix}'
                setattr(module, name, _quantization_unavailable)
                names.append(name)
        module.__all__ = names


_QUANTIZATION_STUB = _QuantizationStubLoader()


def _shim_mmrazor_quantization() -> bool:
    mmrazor_version = _dist_version('mmrazor')
    if (mmrazor_version is None or mmrazor_version > digit_version('1.0.0')
            or not _torch_at_least('2.1.0')):
        return False
    imported = sys.modules.get(QUANT_BACKEND_MODULE)
    if imported is not None:
        # Too late to replace it; it is the stub if the start-up hook was
        # first.
        return isinstance(
            getattr(imported.__spec__, 'loader', None),
            _QuantizationStubLoader)
    if _QUANTIZATION_STUB not in sys.meta_path:
        sys.meta_path.insert(0, _QUANTIZATION_STUB)
    return True


# The shims that may run while MMRazor is half imported: they import
# nothing from MMRazor. package_lookup comes along because MMRazor's own
# tools read the config (and its ``mmpretrain::`` bases) before the
# config's ``custom_imports`` can import mgd_plugin.
STARTUP_SHIMS = ('mmrazor_quantization', 'package_lookup')


def startup_find_spec(fullname: str, path=None, target=None):
    """The module spec that the start-up hook hands to Python for
    MMRazor's quantization tables.

    ``_mgd_plugin_startup`` (run by ``mgd_plugin_startup.pth`` when Python
    starts) calls this when ``QUANT_BACKEND_MODULE`` is imported before
    ``mgd_plugin`` is. It applies :data:`STARTUP_SHIMS`.

    Returns:
        ModuleSpec | None: the stub's spec where the ``mmrazor_quantization``
        shim applies; None otherwise, so that the real module is imported.
    """
    if 'mmrazor_quantization' not in apply(STARTUP_SHIMS):
        return None
    return _QUANTIZATION_STUB.find_spec(fullname, path, target)


def _shim_mmrazor_inplace_walk() -> bool:
    mmrazor_version = _dist_version('mmrazor')
    if mmrazor_version is None or mmrazor_version > digit_version('1.0.0'):
        return False
    from mmrazor.models.algorithms.base import BaseAlgorithm
    from torch import nn

    def set_module_inplace_false(self, architecture, varstr: str) -> None:
        roots = ([architecture] if isinstance(architecture, nn.Module) else [
            m for m in architecture.values() if isinstance(m, nn.Module)
        ])
        for root in roots:
            for module in root.modules():
                if hasattr(module, 'inplace'):
                    module.inplace = False

    BaseAlgorithm.set_module_inplace_false = set_module_inplace_false
    return True


# --------------------------------------------------------------------------
# Safe (weights_only) checkpoint loading
# --------------------------------------------------------------------------
LEGACY_CHECKPOINT_HINT = (
    'It was written by MMEngine without mgd_plugin: its HistoryBuffer '
    'entries pickle `builtins.getattr`, which safe loading (torch >= 2.6, '
    'weights_only=True) refuses because it lets a file reach arbitrary '
    'callables. If you trust this file, convert it once with\n'
    '    python tools/misc/convert_legacy_checkpoint.py {path} NEW_PATH\n'
    'and resume from NEW_PATH.')


def _numpy_checkpoint_types() -> list:
    import numpy as np

    # Reach the reconstructors through the objects themselves: their module
    # moved from numpy.core to numpy._core in NumPy 2.
    types = [
        np.ndarray,
        np.dtype,
        np.array(0.).__reduce__()[0],
        np.float64(0.).__reduce__()[0],
    ]
    types += sorted({type(np.dtype(code))
                     for code in np.typecodes['All']},
                    key=str)
    return types


def _with_legacy_hint(local_loader):
    """Wrap MMEngine's local checkpoint loader ``(filename, map_location)``
    so that a checkpoint refused for its pickled ``getattr`` says how to
    convert it; every other error passes through unchanged."""

    def load_from_local(filename, map_location):
        try:
            return local_loader(filename, map_location)
        except pickle.UnpicklingError as error:
            if 'getattr' not in str(error):
                raise
            raise RuntimeError(f'Cannot safely load checkpoint {filename}. ' +
                               LEGACY_CHECKPOINT_HINT.format(
                                   path=filename)) from error

    load_from_local._mgd_plugin_wrapped = True
    return load_from_local


def _shim_checkpoint_safe_load() -> bool:
    if not _torch_at_least('2.6.0'):
        return False
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader

    torch.serialization.add_safe_globals([HistoryBuffer] +
                                         _numpy_checkpoint_types())

    local_loader = CheckpointLoader._schemes['']
    if getattr(local_loader, '_mgd_plugin_wrapped', False):
        return True
    CheckpointLoader.register_scheme(
        prefixes='', force=True)(
            _with_legacy_hint(local_loader))
    return True


def _shim_history_buffer_pickle() -> bool:
    from mmengine.logging import HistoryBuffer

    if 'statistics_methods' not in HistoryBuffer().__getstate__():
        return False

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        return state

    HistoryBuffer.__getstate__ = __getstate__
    return True


# --------------------------------------------------------------------------
# Distributed training on CPU (gloo)
# --------------------------------------------------------------------------
def _shim_cpu_distributed() -> bool:
    import torch.distributed as torch_dist
    from mmengine.device import get_device
    from mmengine.dist import utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    init_pytorch = dist_utils._init_dist_pytorch
    if getattr(init_pytorch, '_mgd_plugin_wrapped', False):
        return True

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if get_device() != 'cpu' or init_backend != 'torch':
            return init_pytorch(backend, init_backend=init_backend, **kwargs)
        # No accelerator: NCCL cannot run and there is no device to select.
        torch_dist.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, **kwargs)

    _init_dist_pytorch._mgd_plugin_wrapped = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_init = MMDistributedDataParallel.__init__

    def __init__(self, module, *args, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            # DDP rejects device_ids for CPU modules.
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        ddp_init(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = __init__
    return True


# --------------------------------------------------------------------------
# Package look-ups without pkg_resources
# --------------------------------------------------------------------------
def _installed_path(package: str) -> str:
    """Directory of an installed package (``mmpretrain`` -> its folder)."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        top_level = (distribution.read_text('top_level.txt') or '').split()
        for module in [package.replace('-', '_')] + top_level:
            path = distribution.locate_file(module)
            if os.path.isdir(path):
                return str(path)
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise importlib.metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package, which is '
                           'invalid for `get_installed_path`')
    return os.path.dirname(spec.origin)


def _is_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def _shim_package_lookup() -> bool:
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils

    for module in (package_utils, utils_module, config_module, hub_module):
        if hasattr(module, 'get_installed_path'):
            module.get_installed_path = _installed_path
        if hasattr(module, 'is_installed'):
            module.is_installed = _is_installed
    return True


# --------------------------------------------------------------------------
# Atomic local writes
# --------------------------------------------------------------------------
# The temporary of a write names its writer: ``.<target>.<pid>@<host>.part``.
_TEMPORARY = re.compile(r'^\..+\.(?P<pid>\d+)@(?P<host>[^@/]+)\.part$')


def _temporary_path(filepath: str) -> str:
    # Beside the target (same file system, so the rename is atomic).
    directory, name = os.path.split(os.path.abspath(filepath))
    return os.path.join(directory,
                        f'.{name}.{os.getpid()}@{socket.gethostname()}.part')


def _is_running(pid: int) -> bool:
    if os.name == 'nt':
        return True  # os.kill(pid, 0) would terminate it there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _remove_dead_temporaries(directory: str) -> None:
    """Remove the temporaries of writes that were killed before their
    rename (SIGKILL, an out-of-memory kill, a node failure), which no
    ``except`` clause can clean up: those of this host whose writer process
    is gone. Others (a live writer, another host on a shared file system)
    are left alone."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    host = socket.gethostname()
    for name in names:
        match = _TEMPORARY.match(name)
        if (match is None or match.group('host') != host
                or _is_running(int(match.group('pid')))):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # another process cleaned it first


def _write_atomically(filepath: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    # open() rather than mkstemp() keeps the user's umask permissions.
    tmp_path = _temporary_path(filepath)
    try:
        with open(tmp_path, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _save_checkpoint_with_step(self, runner, step, meta):
    """MMEngine 0.10's ``CheckpointHook._save_checkpoint_with_step``, in
    crash-safe order: at every instant ``last_checkpoint`` names a complete
    checkpoint that exists."""
    from mmengine.dist import is_main_process
    from mmengine.fileio.backends.local_backend import LocalBackend

    if is_main_process():
        # A save killed before its renames (SIGKILL) left its temporaries.
        directories = {os.path.abspath(runner.work_dir)}
        if isinstance(self.file_backend, LocalBackend):
            directories.add(os.path.abspath(self.out_dir))
        for directory in directories:
            _remove_dead_temporaries(directory)

    stale_step = None
    # The kept-ids list is updated before saving, as upstream does, because
    # the checkpoint carries it: a resumed CheckpointHook deletes the ids
    # beyond max_keep_ckpts at the front of that list. The checkpoint to
    # prune stays in the saved list, so that a run killed before pruning it
    # prunes it on resume; the deletion itself waits until the new
    # checkpoint and the pointer are on disk.
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            stale_step = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info(
            'keep_ckpt_ids', ([] if stale_step is None else [stale_step]) +
            list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)

    if is_main_process():
        _write_atomically(
            os.path.join(runner.work_dir, 'last_checkpoint'),
            str(self.last_ckpt).encode('utf-8'))
        if stale_step is not None:
            stale = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(stale_step))
            if self.file_backend.isfile(stale):
                self.file_backend.remove(stale)
            elif self.file_backend.isdir(stale):
                # DeepSpeed checkpoints are directories.
                self.file_backend.rmtree(stale)
    if stale_step is not None:
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))


def _shim_atomic_checkpoint_write() -> bool:
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import CheckpointHook

    if getattr(LocalBackend.put, '_mgd_plugin_wrapped', False):
        return True

    def put(self, obj: bytes, filepath) -> None:
        _write_atomically(str(filepath), obj)

    put._mgd_plugin_wrapped = True
    LocalBackend.put = put
    # The reordered copy is only right for the MMEngine it was read from.
    if _dist_version('mmengine') == digit_version('0.10.7'):
        CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    return True


_SHIMS = [
    ('mmrazor_quantization', _shim_mmrazor_quantization),
    ('mmrazor_inplace_walk', _shim_mmrazor_inplace_walk),
    ('checkpoint_safe_load', _shim_checkpoint_safe_load),
    ('history_buffer_pickle', _shim_history_buffer_pickle),
    ('cpu_distributed', _shim_cpu_distributed),
    ('package_lookup', _shim_package_lookup),
    ('atomic_checkpoint_write', _shim_atomic_checkpoint_write),
]


def apply(names: Optional[Iterable[str]] = None) -> List[str]:
    """Install the shims the installed versions need; idempotent.

    Args:
        names (Iterable[str], optional): only these shims. Defaults to all.

    Returns:
        list[str]: the names of the shims active in this process.
    """
    if names is not None:
        names = set(names)
        unknown = names - {name for name, _ in _SHIMS}
        if unknown:
            raise ValueError(f'Unknown compatibility shims: {sorted(unknown)}')
    for name, shim in _SHIMS:
        if names is not None and name not in names:
            continue
        if name not in APPLIED and shim():
            APPLIED.append(name)
    return list(APPLIED)
