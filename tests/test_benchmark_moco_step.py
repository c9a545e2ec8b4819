"""benchmark_moco_step.py writes its figures and verdict as JSON (tiny
settings, in this process)."""
import json
import os.path as osp
import sys

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_moco_step as bench  # noqa: E402


def test_record_of_a_tiny_run(tmp_path):
    out = str(tmp_path / 'moco.json')
    code = bench.main([
        '--batch-size', '2', '--img-size', '32', '--steps', '2', '--warmup',
        '0', '--threads', '1', '--out', out
    ])
    with open(out) as f:
        record = json.load(f)
    assert record['benchmark'] == 'moco_step'
    assert '--img-size 32' in record['command']
    steps = record['figures']['steps']
    assert list(steps) == ['moco', 'floor', 'nets', 'mgd']
    assert steps['floor']['to_floor_paired'] == 1.0
    for row in steps.values():
        assert row['times']['median'] > 0
    losses = record['figures']['mgd_losses']
    assert {f'distill.loss_mgd{k}' for k in range(4)} <= set(losses)
    (check, ) = record['verdict']['checks']
    ratio = steps['mgd']['to_floor_paired']
    assert check['passed'] == (ratio <= bench.TARGET_RATIO)
    assert code == (0 if check['passed'] else 1)
