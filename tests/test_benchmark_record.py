"""The record every benchmark writes (tools/analysis_tools/benchmark_record):
its fields, and that it survives a JSON round trip."""
import datetime
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_record  # noqa: E402

VERSIONS = ('python', 'torch', 'mmengine', 'mmpretrain', 'mmrazor', 'ortools',
            'scipy', 'mgd_plugin')


def test_record_fields():
    checks = benchmark_record.make_verdict([('fast', True), ('exact', False)])
    assert checks == dict(
        passed=False,
        checks=[
            dict(check='fast', passed=True),
            dict(check='exact', passed=False)
        ])
    before = datetime.datetime.now().astimezone()
    record = benchmark_record.make_record(
        'demo', dict(seconds=1.5), checks, steps=3)
    after = datetime.datetime.now().astimezone()
    assert set(benchmark_record.RECORD_KEYS) <= set(record)
    assert record['benchmark'] == 'demo' and record['steps'] == 3
    assert record['figures'] == dict(seconds=1.5)
    assert record['verdict'] is checks
    date = datetime.datetime.fromisoformat(record['date'])
    assert date.tzinfo is not None
    assert before.replace(microsecond=0) <= date <= after
    machine = record['machine']
    assert machine['device'] == 'cpu'
    assert machine['cpu_count'] >= 1 and machine['platform']
    assert machine['processor']
    for name in VERSIONS:
        assert record['versions'][name], name
    assert record['versions']['torch'] == torch.__version__.split('+')[0]
    import mgd_plugin
    assert record['versions']['mgd_plugin'] == mgd_plugin.__version__
    head = subprocess.run(['git', 'rev-parse', 'HEAD'],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True)
    if head.returncode == 0:
        assert record['git']['commit'] == head.stdout.strip()
        assert isinstance(record['git']['dirty'], bool)
    with pytest.raises(ValueError, match='date'):
        benchmark_record.make_record('demo', {}, date='yesterday')


def test_command_is_relative_to_the_checkout_and_quoted():
    script = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'bench.py')
    assert benchmark_record.command_line([script, '--out', 'a b.json']) == \
        "python tools/analysis_tools/bench.py --out 'a b.json'"


def test_json_round_trip(tmp_path):
    figures = dict(
        median_s=np.float64(0.25),
        count=np.int64(7),
        ratio=torch.tensor(1.5),
        per_step=np.array([1.0, 2.0]),
        nested=dict(ok=True, name='x'))
    record = benchmark_record.make_record('demo', figures, None, steps=2)
    path = benchmark_record.write_record(record,
                                         str(tmp_path / 'out' / 'demo.json'))
    with open(path) as f:
        loaded = json.load(f)
    assert loaded['figures'] == dict(
        median_s=0.25,
        count=7,
        ratio=1.5,
        per_step=[1.0, 2.0],
        nested=dict(ok=True, name='x'))
    plain = {k: v for k, v in record.items() if k != 'figures'}
    assert {k: v for k, v in loaded.items() if k != 'figures'} == plain
    assert not osp.exists(path + '.part')


def test_default_path_is_under_benchmarks_results():
    assert benchmark_record.default_path('matching') == osp.join(
        REPO_ROOT, 'benchmarks', 'results', 'matching.json')


def test_cuda_device_is_named_or_a_clear_error():
    if torch.cuda.is_available():
        assert benchmark_record.environment('cuda')['machine']['device'] == \
            torch.cuda.get_device_name(0)
    else:
        with pytest.raises(RuntimeError, match='CUDA is not available'):
            benchmark_record.environment('cuda')
