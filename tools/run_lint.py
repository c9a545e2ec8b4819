"""Check the code style that CI enforces (OpenMMLab's flake8, isort, yapf).

    python3 tools/run_lint.py [--fix]

Sets itself up like ``tools/run_tests.py`` (tools/bootstrap.py), then runs
the three linters with the settings of ``setup.cfg`` on the paths below.
The exit status is non-zero when any of them finds something. ``--fix``
first rewrites the files with isort and yapf (flake8 findings stay yours).
"""
import os
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bootstrap  # noqa: E402

PATHS = ('mgd_plugin', 'tools', 'tests', 'configs', 'setup.py',
         '_mgd_plugin_startup.py')


def lint_commands(fix: bool = False):
    python = [sys.executable, '-m']
    commands = []
    if fix:
        commands += [[*python, 'isort', '-q', *PATHS],
                     [*python, 'yapf', '-i', '-r', *PATHS]]
    return commands + [
        [*python, 'flake8', *PATHS],
        [*python, 'isort', '--check-only', '--diff', *PATHS],
        # yapf --diff exits non-zero when it would reformat something.
        [*python, 'yapf', '--diff', '-r', *PATHS],
    ]


def main(argv):
    bootstrap.enter_environment(__file__, argv)
    os.chdir(bootstrap.REPO_ROOT)
    failed = []
    for command in lint_commands(fix='--fix' in argv):
        print('[lint] $ ' + ' '.join(command[2:]), flush=True)
        if subprocess.run(command).returncode != 0:
            failed.append(command[3])
    if failed:
        print(f'[lint] findings from: {", ".join(failed)} (python3 '
              'tools/run_lint.py --fix rewrites what isort and yapf can)')
        return 1
    print('[lint] clean')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
