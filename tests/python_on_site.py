"""Start Python code the way an interpreter with a given site-packages would.

Usage (see ``conftest.bare_python``)::

    python -S python_on_site.py SITE_DIR PLAIN_DIRS (-c CODE | SCRIPT) [ARGS]

``-S`` keeps Python from processing its own site-packages. SITE_DIR (may be
empty) is then processed with :func:`site.addsitedir`, the function Python's
start-up uses for site-packages, so its ``.pth`` files run. PLAIN_DIRS
(``os.pathsep``-separated) are only appended to ``sys.path``: their packages
import, their ``.pth`` files do not run.
"""
import os
import runpy
import site
import sys

site_dir, plain_dirs, target = sys.argv[1:4]
if site_dir:
    site.addsitedir(site_dir)
sys.path.extend(d for d in plain_dirs.split(os.pathsep) if d)
if target == '-c':
    code = sys.argv[4]
    sys.argv = ['-c'] + sys.argv[5:]
    sys.path[0] = ''
    exec(compile(code, '<string>', 'exec'), {'__name__': '__main__'})
else:
    sys.argv = sys.argv[3:]
    sys.path[0] = os.path.dirname(os.path.abspath(target))
    runpy.run_path(target, run_name='__main__')
