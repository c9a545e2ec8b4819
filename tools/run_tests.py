"""Set up the environment and run the test suite (what CI runs).

    python3 tools/run_tests.py [pytest arguments]

From a bare ``python3``: creates ``.venv`` and installs into it when needed
(see tools/bootstrap.py), then runs ``python -m pytest tests -q`` there.
Extra arguments go to pytest; when they name test files or folders, those
replace ``tests``. The exit status is pytest's.
"""
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bootstrap  # noqa: E402


def _is_path(arg: str) -> bool:
    return not arg.startswith('-') and osp.exists(arg.split('::')[0])


def pytest_command(argv):
    """pytest's command line, run from the repository root: ``tests`` unless
    ``argv`` names test paths (made absolute, as given from the cwd)."""
    args = [osp.abspath(arg) if _is_path(arg) else arg for arg in argv]
    targets = [] if any(_is_path(arg) for arg in argv) else ['tests']
    return [sys.executable, '-m', 'pytest', *targets, '-q', *args]


def main(argv):
    bootstrap.enter_environment(__file__, argv)
    command = pytest_command(argv)
    os.chdir(bootstrap.REPO_ROOT)
    print('[tests] $ ' + ' '.join(command), flush=True)
    os.execv(command[0], command)


if __name__ == '__main__':
    main(sys.argv[1:])
