"""Set up the repository's virtual environment and continue inside it.

Standard library only: the entry points (``tools/run_main_job.py``,
``tools/run_tests.py``) call :func:`enter_environment` first, from a bare
``python3``. It

1. creates ``.venv`` in the repository if it has no Python (installing
   Debian's ``python3-venv`` first when ``venv`` lacks ``ensurepip`` and
   this runs as root with apt-get);
2. re-executes the entry point with the virtual environment's Python;
3. there, installs the tested torch/torchvision pair and then this package
   with its test and lint extras (``pip install -e '.[tests,lint]'``),
   unless a stamp in ``.venv`` says that exactly this ``setup.py``, these
   pins and extras are installed and the packages are present; after
   installing it starts once more, so that the new packages are
   importable.

``MGD_PLUGIN_NO_VENV=1`` skips all of it and runs with the current Python,
for an environment you manage yourself.
"""
import hashlib
import importlib.metadata
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
VENV_DIR = osp.join(REPO_ROOT, '.venv')
# The tested pair (README "Versions"). The registry's torchvision wheels are
# CUDA builds that need the matching CUDA torch; both run on a CPU.
TORCH_PINS = ('torch==2.14.1', 'torchvision==0.29.1')
# The package's extras the two commands need: pytest (tests) and the
# linters CI runs (lint).
EXTRAS = 'tests,lint'
STAMP_NAME = 'mgd_plugin-install.json'
NO_VENV_ENV = 'MGD_PLUGIN_NO_VENV'
RESTARTED_ENV = 'MGD_PLUGIN_INSTALLED_NOW'


def log(message: str) -> None:
    print(f'[setup] {message}', flush=True)


def venv_python(venv_dir: str) -> str:
    return osp.join(venv_dir, 'bin', 'python')


def running_in(venv_dir: str) -> bool:
    return osp.realpath(sys.prefix) == osp.realpath(venv_dir)


def install_fingerprint(repo_root: str) -> str:
    """What the installed environment must match: setup.py, the pins and
    the Python version."""
    digest = hashlib.sha256()
    with open(osp.join(repo_root, 'setup.py'), 'rb') as f:
        digest.update(f.read())
    digest.update(repr(TORCH_PINS).encode())
    digest.update(EXTRAS.encode())
    digest.update(sys.version.split()[0].encode())
    return digest.hexdigest()


def _pinned_versions():
    return dict(pin.split('==') for pin in TORCH_PINS)


def installed_and_current(venv_dir: str, repo_root: str) -> bool:
    """Whether this (the venv's) Python already has what the stamp says,
    for the current setup.py and pins."""
    stamp = osp.join(venv_dir, STAMP_NAME)
    try:
        with open(stamp) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return False
    if recorded.get('fingerprint') != install_fingerprint(repo_root):
        return False
    try:
        for name, version in _pinned_versions().items():
            if importlib.metadata.version(name) != version:
                return False
        importlib.metadata.version('mgd_plugin')
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _run(command, **kwargs) -> None:
    log('$ ' + ' '.join(command))
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, **kwargs)


def install(python: str, venv_dir: str, repo_root: str) -> None:
    """pip-install the pins and the package, then write the stamp."""
    start = time.monotonic()
    log('installing (first time: torch with its CUDA libraries, about '
        '5.5 GB; a few minutes)')
    # A venv's bundled pip may predate editable installs of setup.py-only
    # projects (PEP 660).
    _run([
        python, '-m', 'pip', 'install', '--disable-pip-version-check',
        '--upgrade', 'pip'
    ])
    _run([
        python, '-m', 'pip', 'install', '--disable-pip-version-check',
        *TORCH_PINS
    ])
    _run([
        python, '-m', 'pip', 'install', '--disable-pip-version-check', '-e',
        f'{repo_root}[{EXTRAS}]'
    ])
    with open(osp.join(venv_dir, STAMP_NAME), 'w') as f:
        json.dump(
            dict(
                fingerprint=install_fingerprint(repo_root),
                pins=list(TORCH_PINS)), f)
    log(f'installed in {time.monotonic() - start:.0f} s')


def _apt_install_venv() -> bool:
    """Install Debian's venv support when we may; True if it was tried."""
    if not (hasattr(os, 'geteuid') and os.geteuid() == 0
            and shutil.which('apt-get')):
        return False
    version = f'python3.{sys.version_info.minor}-venv'
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    _run(['apt-get', 'update'], env=env)
    result = subprocess.run(['apt-get', 'install', '-y', version],
                            env=env,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        _run(['apt-get', 'install', '-y', 'python3-venv'], env=env)
    return True


def create_venv(venv_dir: str) -> None:
    log(f'creating the virtual environment {venv_dir}')
    command = [sys.executable, '-m', 'venv', venv_dir]
    if subprocess.run(command, stdin=subprocess.DEVNULL).returncode == 0:
        return
    # Debian's python3 ships venv without ensurepip (package python3-venv).
    shutil.rmtree(venv_dir, ignore_errors=True)
    if _apt_install_venv() and subprocess.run(
            command, stdin=subprocess.DEVNULL).returncode == 0:
        return
    raise SystemExit(
        f'Could not create {venv_dir} with "{" ".join(command)}". On '
        'Debian/Ubuntu install venv support first (as root: apt-get '
        f'install python3-venv), or set {NO_VENV_ENV}=1 to use the '
        'current Python with the packages of README "Install".')


def enter_environment(script: str, argv) -> None:
    """Make sure this process runs in the set-up environment.

    Returns in that environment (after installing if needed); from any
    other Python it re-executes ``script`` with ``argv`` in the venv and
    does not return.
    """
    if os.environ.get(NO_VENV_ENV) == '1':
        return
    if running_in(VENV_DIR):
        if installed_and_current(VENV_DIR, REPO_ROOT):
            return
        if os.environ.get(RESTARTED_ENV) == '1':
            raise SystemExit(
                f'{VENV_DIR} still lacks {", ".join(TORCH_PINS)} or '
                'mgd_plugin after installing them; see the pip output '
                'above, or delete .venv and run again.')
        install(sys.executable, VENV_DIR, REPO_ROOT)
        os.environ[RESTARTED_ENV] = '1'
        # Packages installed now (the editable mgd_plugin's path hook) are
        # seen only by an interpreter that starts after them.
        python = sys.executable
    else:
        python = venv_python(VENV_DIR)
        if not os.access(python, os.X_OK):
            create_venv(VENV_DIR)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, osp.abspath(script), *argv])
