"""The set-up shared by the one-command entry points (tools/bootstrap.py)
and the test command's argument handling (tools/run_tests.py).

pip and venv creation are replaced by recorders; one test runs the real
test command in a subprocess on a tiny failing test file.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import bootstrap  # noqa: E402
import run_tests  # noqa: E402


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository root with a setup.py and an (empty) .venv."""
    (tmp_path / 'setup.py').write_text('# version 1\n')
    venv = tmp_path / '.venv'
    (venv / 'bin').mkdir(parents=True)
    monkeypatch.setattr(bootstrap, 'REPO_ROOT', str(tmp_path))
    monkeypatch.setattr(bootstrap, 'VENV_DIR', str(venv))
    return tmp_path


def write_stamp(repo):
    with open(repo / '.venv' / bootstrap.STAMP_NAME, 'w') as f:
        json.dump(
            dict(fingerprint=bootstrap.install_fingerprint(str(repo))), f)


def fake_versions(monkeypatch, **versions):

    def version(name):
        if name not in versions:
            raise bootstrap.importlib.metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(bootstrap.importlib.metadata, 'version', version)


INSTALLED = dict(torch='2.14.1', torchvision='0.29.1', mgd_plugin='0.1.0')


def current(repo):
    return bootstrap.installed_and_current(str(repo / '.venv'), str(repo))


def test_installed_and_current_needs_stamp_setup_py_and_packages(
        repo, monkeypatch):
    fake_versions(monkeypatch, **INSTALLED)
    assert not current(repo)  # no stamp
    write_stamp(repo)
    assert current(repo)
    (repo / 'setup.py').write_text('# version 2: a new dependency\n')
    assert not current(repo)
    write_stamp(repo)
    assert current(repo)
    fake_versions(monkeypatch, **dict(INSTALLED, torch='2.15.0'))
    assert not current(repo)
    fake_versions(monkeypatch, torch='2.14.1', torchvision='0.29.1')
    assert not current(repo)  # the package itself is missing


class Recorder:

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)


def test_outside_the_venv_creates_it_and_reexecutes(repo, monkeypatch):
    monkeypatch.delenv(bootstrap.NO_VENV_ENV, raising=False)
    created, execs = Recorder(), Recorder()
    monkeypatch.setattr(bootstrap, 'running_in', lambda venv: False)
    monkeypatch.setattr(bootstrap, 'create_venv', created)
    monkeypatch.setattr(bootstrap, 'install', Recorder())
    monkeypatch.setattr(bootstrap.os, 'execv', execs)
    bootstrap.enter_environment('tools/x.py', ['--seeds', '1'])
    python = str(repo / '.venv' / 'bin' / 'python')
    assert len(created.calls) == 1
    assert execs.calls == [
        (python, [python, osp.abspath('tools/x.py'), '--seeds', '1'])
    ]
    # An existing venv is reused.
    open(python, 'w').close()
    os.chmod(python, 0o755)
    bootstrap.enter_environment('tools/x.py', [])
    assert len(created.calls) == 1 and len(execs.calls) == 2


def test_inside_the_venv_installs_only_when_needed(repo, monkeypatch):
    monkeypatch.delenv(bootstrap.NO_VENV_ENV, raising=False)
    monkeypatch.delenv(bootstrap.RESTARTED_ENV, raising=False)
    installs, execs = Recorder(), Recorder()
    monkeypatch.setattr(bootstrap, 'running_in', lambda venv: True)
    monkeypatch.setattr(bootstrap, 'install', installs)
    monkeypatch.setattr(bootstrap.os, 'execv', execs)
    fake_versions(monkeypatch, **INSTALLED)
    bootstrap.enter_environment('tools/x.py', ['-k'])
    assert len(installs.calls) == 1
    # Restarted, so that the editable install is importable.
    assert execs.calls == [(sys.executable,
                            [sys.executable,
                             osp.abspath('tools/x.py'), '-k'])]
    write_stamp(repo)
    bootstrap.enter_environment('tools/x.py', [])
    assert len(installs.calls) == 1 and len(execs.calls) == 1


def test_an_install_that_does_not_take_stops(repo, monkeypatch):
    monkeypatch.delenv(bootstrap.NO_VENV_ENV, raising=False)
    monkeypatch.setenv(bootstrap.RESTARTED_ENV, '1')
    monkeypatch.setattr(bootstrap, 'running_in', lambda venv: True)
    monkeypatch.setattr(bootstrap, 'install', None)
    fake_versions(monkeypatch)  # nothing installed
    with pytest.raises(SystemExit, match='still lacks'):
        bootstrap.enter_environment('tools/x.py', [])


def test_install_runs_pip_with_the_pins_then_the_package(repo, monkeypatch):
    commands = []
    monkeypatch.setattr(bootstrap, '_run', lambda c, **kw: commands.append(c))
    fake_versions(monkeypatch, **INSTALLED)
    bootstrap.install('/venv/python', str(repo / '.venv'), str(repo))
    assert all(c[:4] == ['/venv/python', '-m', 'pip', 'install']
               for c in commands)
    assert commands[1][-2:] == list(bootstrap.TORCH_PINS)
    assert commands[2][-2:] == ['-e', f'{repo}[tests,lint]']
    assert current(repo)


def test_no_venv_setting_uses_the_current_python(repo, monkeypatch):
    monkeypatch.setenv(bootstrap.NO_VENV_ENV, '1')
    monkeypatch.setattr(bootstrap, 'create_venv', None)
    monkeypatch.setattr(bootstrap.os, 'execv', None)
    bootstrap.enter_environment('tools/x.py', [])


def test_test_command_forwards_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_tests.pytest_command(
        ['-k', 'foo'])[2:] == ['pytest', 'tests', '-q', '-k', 'foo']
    (tmp_path / 'test_a.py').write_text('')
    command = run_tests.pytest_command(['test_a.py::test_b', '-x'])
    assert command[2:] == [
        'pytest', '-q',
        str(tmp_path / 'test_a.py::test_b'), '-x'
    ]


def test_test_command_reports_pytest_summary_and_exit_status(tmp_path):
    (tmp_path / 'test_tiny.py').write_text(
        'def test_pass():\n    pass\n\n\ndef test_fail():\n    assert 0\n')
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'run_tests.py'),
        str(tmp_path / 'test_tiny.py'), '-p', 'no:cacheprovider'
    ],
                            env=dict(os.environ,
                                     **{bootstrap.NO_VENV_ENV: '1'}),
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].startswith(
        '1 failed, 1 passed')
