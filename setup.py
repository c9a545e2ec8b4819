"""Install mgd_plugin: ``pip install -e .`` from a checkout."""
import os.path as osp
from setuptools import find_packages, setup
from setuptools.dist import Distribution


def read_version():
    scope = {}
    path = osp.join(osp.dirname(__file__), 'mgd_plugin', 'version.py')
    with open(path) as f:
        exec(f.read(), scope)
    return scope['__version__']


# The ranges are the ones this project was tested with (see README.md).
# torch is capped below 2.16 because the compatibility layer in
# mgd_plugin/compat.py is proven against 2.14/2.15 only.
INSTALL_REQUIRES = [
    'torch>=2.1,<2.16',
    'torchvision>=0.16,<0.30',
    'mmengine==0.10.7',
    # mmrazor 1.0 asserts mmcv <= 2.1.0; mmcv-lite provides the `mmcv`
    # module without compiled ops, which nothing here needs.
    'mmcv-lite>=2.0.1,<=2.1.0',
    'mmpretrain==1.2.0',
    'mmrazor==1.0.0',
    'ortools>=9.8,<10',
    'scipy>=1.10',
    # mmrazor imports joblib without declaring it.
    'joblib>=1.2',
    'numpy>=1.24',
    # tools/analysis_tools/plot_logs.py and plot_fashion_mnist.py.
    'matplotlib>=3.5',
]


class PluginDistribution(Distribution):
    """Makes `pip install -e .` install data_files (our start-up .pth).

    setuptools' editable_wheel means to copy data files into the editable
    wheel, but asks the distribution for `has_data`, which only the install
    command defines, so it silently skips them.
    """

    def has_data(self):
        return self.has_data_files()


setup(
    name='mgd_plugin',
    version=read_version(),
    description=('Matching Guided Distillation (ECCV 2020) for MMRazor and '
                 'MMPretrain'),
    long_description=open(
        osp.join(osp.dirname(__file__), 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['mgd_plugin', 'mgd_plugin.*']),
    # The start-up hook that lets MMRazor's own tools import on torch >= 2.1
    # (see _mgd_plugin_startup.py). Python runs a .pth file only from
    # site-packages itself. Both `pip install .` and `pip install -e .`
    # stage data files in the wheel's `<name>.data/data/`, and the wheel's
    # `<name>.data/purelib/` is installed into site-packages, hence the
    # relative path. (A custom build_py would miss editable installs: their
    # wheel leaves out build_lib.)
    py_modules=['_mgd_plugin_startup'],
    data_files=[('../purelib', ['mgd_plugin_startup.pth'])],
    distclass=PluginDistribution,
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # The packaging tests build this package offline, with the
        # environment's setuptools (>= 70.1 needs no `wheel` package);
        # pytest-timeout: pytest.ini fails a hanging test instead of CI.
        'tests': ['pytest>=7', 'pytest-timeout>=2.1', 'setuptools>=70.1'],
        # The linters and versions of .pre-commit-config.yaml and .ci/run.
        'lint': [
            'flake8==7.3.0', 'isort==5.13.2', 'yapf==0.43.0',
            'pre-commit==4.5.1'
        ],
        # tools/misc/run_mutation_tests.sh; not part of CI.
        'mutation': ['mutmut>=3.8,<4'],
    },
    zip_safe=False,
)
