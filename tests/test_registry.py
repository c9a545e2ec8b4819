"""`import mgd_plugin` (or a config's custom_imports) registers the plugin's
names, in fresh processes so that nothing else imported them first."""
import subprocess
import sys
import textwrap

from conftest import REPO_ROOT

MODELS_NAMES = [
    'MatchingGuidedDistillation', 'MatchingGuidedDistiller',
    'MatchingGuidedLoss', 'AbsMaxPoolReducer', 'RandomDropReducer',
    'MaxPoolReducer', 'SparseMatchReducer', 'OFDAtPositionsDistiller'
]


def python(code):
    proc = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_registers_models_and_hooks():
    out = python(f"""
        import mgd_plugin
        from mmrazor.registry import MODELS, HOOKS
        from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        for name in {MODELS_NAMES!r}:
            assert MODELS.get(name) is not None, name
        for name in ('MatchingUpdateHook', 'EpochSeedHook'):
            assert HOOKS.get(name) is not None, name
            assert PRETRAIN_HOOKS.get(name) is not None, name
        backbone = PRETRAIN_MODELS.get('MobileNetV1')
        assert backbone.__module__ == (
            'mgd_plugin.models.backbones.mobilenet_v1')
        for name in ('MoCoMGD', 'ConfigurableMoCo'):
            assert PRETRAIN_MODELS.get(name).__module__.startswith(
                'mgd_plugin.models.selfsup.'), name
        # MMRazor's Masked Generative Distillation names stay MMRazor's.
        assert MODELS.get('MGDLoss').__module__.startswith('mmrazor.')
        assert MODELS.get('MGDConnector').__module__.startswith('mmrazor.')
        print('ok')
        """)
    assert out.strip().endswith('ok')


def test_config_custom_imports_registers(tmp_path):
    config = tmp_path / 'config.py'
    config.write_text("custom_imports = dict(imports=['mgd_plugin'], "
                      'allow_failed_imports=False)\n')
    out = python(f"""
        import mmrazor, mmrazor.registry  # the user imported mmrazor first
        from mmengine.config import Config
        Config.fromfile({str(config)!r})
        from mmrazor.registry import MODELS
        reducer = MODELS.build(dict(type='AbsMaxPoolReducer',
                                    student_channels=2, teacher_channels=6))
        print(type(reducer).__module__)
        """)
    assert 'mgd_plugin.models.architectures.connectors' in out
