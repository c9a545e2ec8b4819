"""Start-up hook of mgd_plugin, run by ``mgd_plugin_startup.pth``.

MMRazor's own ``tools/train.py`` (also run by ``mim train mmrazor``) calls
``mmrazor.utils.register_all_modules`` before it reads the config, so a
config's ``custom_imports = dict(imports=['mgd_plugin'])`` comes too late:
MMRazor 1.0 has already imported its quantization backend tables, which fail
on torch >= 2.1.

Python executes the ``.pth`` file, installed beside the package in
site-packages, when it starts. All it does is put :class:`StartupHook` first
on ``sys.meta_path``. The hook imports nothing at start-up and answers
``None`` at once for every module but MMRazor's quantization tables. For
that one, it hands the decision to :func:`mgd_plugin.compat.startup_find_spec`
(the ``mmrazor_quantization`` shim), which gives the stub where the installed
torch and MMRazor need it and the real module otherwise.
"""
import sys

QUANT_BACKEND_MODULE = 'mmrazor.structures.quantization.backend_config'
COMPAT_MODULE = 'mgd_plugin.compat'


class StartupHook:
    """A ``sys.meta_path`` finder that acts for one module only."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != QUANT_BACKEND_MODULE:
            return None
        compat = load_compat()
        if compat is None:
            return None
        return compat.startup_find_spec(fullname, path, target)


def load_compat():
    """``mgd_plugin.compat``, loaded without ``mgd_plugin/__init__.py``.

    The hook runs while MMRazor is half-way through importing
    ``mmrazor.structures``, and the package's ``__init__`` imports
    ``mmrazor.models``, which needs ``mmrazor.structures`` complete. compat.py
    imports nothing from the package, so it is loaded under its own name; a
    later ``import mgd_plugin`` finds it in ``sys.modules`` and uses this same
    module (and its record of applied shims).

    Returns:
        module | None: None when mgd_plugin is not importable (uninstalled,
        with this hook left behind).
    """
    compat = sys.modules.get(COMPAT_MODULE)
    if compat is not None:
        return compat
    from importlib.machinery import PathFinder
    from importlib.util import find_spec, module_from_spec

    package = find_spec('mgd_plugin')
    if package is None or not package.submodule_search_locations:
        return None
    spec = PathFinder.find_spec(COMPAT_MODULE,
                                package.submodule_search_locations)
    if spec is None:
        return None
    compat = module_from_spec(spec)
    sys.modules[COMPAT_MODULE] = compat
    try:
        spec.loader.exec_module(compat)
    except BaseException:
        del sys.modules[COMPAT_MODULE]
        raise
    return compat


def install():
    """Put the hook first on ``sys.meta_path`` (once per process)."""
    if not any(isinstance(finder, StartupHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, StartupHook())
