"""The JSON record that every benchmark writes to ``benchmarks/results/``.

One record per run::

    {"benchmark": "matching",
     "command": "python tools/analysis_tools/benchmark_matching.py ...",
     "date": "2026-11-25T10:00:00+00:00",
     "machine": {"platform": ..., "processor": ..., "cpu_count": 2,
                 "usable_cpus": 2, "device": "cpu"},
     "versions": {"python": ..., "torch": ..., "mmengine": ..., ...},
     "git": {"commit": "<sha>", "dirty": false},
     "figures": {... every measured number ...},
     "verdict": {"passed": true, "checks": [{"check": ..., "passed": ...}]},
     ...benchmark-specific settings...}

Standard library only (torch is imported only to name a CUDA device), so
that a tool can import it before its environment is set up.
"""
import datetime
import importlib.metadata
import json
import os
import os.path as osp
import platform
import re
import shlex
import subprocess
import sys
from typing import Iterable, Optional, Sequence, Tuple

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
RESULTS_DIR = osp.join('benchmarks', 'results')
# Distributions whose versions every record names (None: not installed).
PACKAGES = ('torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmcv-lite',
            'mmpretrain', 'mmrazor', 'ortools', 'scipy')
RECORD_KEYS = ('benchmark', 'command', 'date', 'machine', 'versions', 'git',
               'figures', 'verdict')


def default_path(name: str) -> str:
    """``<repository>/benchmarks/results/<name>.json``."""
    return osp.join(REPO_ROOT, RESULTS_DIR, f'{name}.json')


def add_out_argument(parser, name: str) -> None:
    """Add ``--out`` (default :func:`default_path` of ``name``)."""
    parser.add_argument(
        '--out',
        default=None,
        help=f'JSON record of the run (default: {RESULTS_DIR}/{name}.json)')


def processor_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux), else what ``platform``
    knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str = 'cpu') -> str:
    """``'cpu'``, or the name of the CUDA device ``device`` names."""
    if not str(device).startswith('cuda'):
        return 'cpu'
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r}: CUDA is not available here '
                           f'(torch {torch.__version__}).')
    return torch.cuda.get_device_name(torch.device(device))


def checkout_version() -> Optional[str]:
    """``__version__`` of the mgd_plugin in this checkout (the code that
    ran), read without importing the package."""
    try:
        with open(osp.join(REPO_ROOT, 'mgd_plugin', 'version.py')) as f:
            found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
    except OSError:
        return None
    return found.group(1) if found else None


def versions() -> dict:
    found = {'python': platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found['mgd_plugin'] = checkout_version()
    return found


def git_state() -> dict:
    """The checkout's commit and whether its tracked files differ from it."""

    def git(*args):
        return subprocess.run(['git', *args],
                              cwd=REPO_ROOT,
                              capture_output=True,
                              text=True,
                              timeout=30)

    try:
        head = git('rev-parse', 'HEAD')
        status = git('status', '--porcelain', '--untracked-files=no')
    except (OSError, subprocess.SubprocessError):
        return dict(commit=None, dirty=None)
    if head.returncode != 0:
        return dict(commit=None, dirty=None)
    return dict(
        commit=head.stdout.strip(),
        dirty=bool(status.stdout.strip()) if status.returncode == 0 else None)


def environment(device: str = 'cpu') -> dict:
    """``machine``, ``versions`` and ``git`` of a record."""
    return dict(
        machine=dict(
            platform=platform.platform(),
            processor=processor_name(),
            cpu_count=os.cpu_count(),
            usable_cpus=len(os.sched_getaffinity(0)) if hasattr(
                os, 'sched_getaffinity') else os.cpu_count(),
            device=device_name(device)),
        versions=versions(),
        git=git_state())


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """The command that ran: ``python <script relative to the repository>
    <arguments>``, quoted for a shell."""
    argv = list(sys.argv if argv is None else argv)
    script = osp.abspath(argv[0])
    if script.startswith(REPO_ROOT + os.sep):
        argv[0] = osp.relpath(script, REPO_ROOT)
    return ' '.join(shlex.quote(part) for part in ['python', *argv])


def make_verdict(checks: Iterable[Tuple[str, bool]]) -> dict:
    """``passed`` (all checks passed) and every check with its outcome."""
    checks = [dict(check=text, passed=bool(ok)) for text, ok in checks]
    return dict(passed=all(c['passed'] for c in checks), checks=checks)


def make_record(benchmark: str,
                figures: dict,
                verdict: Optional[dict] = None,
                device: str = 'cpu',
                command: Optional[str] = None,
                **settings) -> dict:
    """A record of one run; ``settings`` are extra top-level keys (the
    benchmark's options). ``date`` is now, in ISO 8601 with the offset."""
    clash = sorted(set(settings) & set(RECORD_KEYS))
    if clash:
        raise ValueError(f'settings {clash} would overwrite record fields')
    return dict(
        benchmark=benchmark,
        command=command if command is not None else command_line(),
        date=datetime.datetime.now().astimezone().isoformat(
            timespec='seconds'),
        **environment(device),
        figures=figures,
        verdict=verdict,
        **settings)


def _plain(value):
    """NumPy and torch values as Python numbers and lists, for
    ``json.dump``."""
    if hasattr(value, 'tolist'):  # NumPy arrays and scalars, tensors
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def write_record(record: dict, path: Optional[str] = None) -> str:
    """Write ``record`` as JSON to ``path`` (default: :func:`default_path`
    of its benchmark), through a temporary file; returns the path."""
    path = path or default_path(record['benchmark'])
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + '.part'
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=2, default=_plain)
        f.write('\n')
    os.replace(tmp, path)
    return path
