"""benchmark_matching.py: the real channel shapes it reads from the shipped
configs, and the record it writes (tiny sizes, in this process)."""
import json
import os.path as osp
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from test_position_finder import documented_pair

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_matching as bench  # noqa: E402

FASHION = 'configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py'
DOCUMENTED = {
    'ResNet-50 -> ResNet-18': 'ResNet-18',
    'ResNet-50 -> MobileNet-V1': 'MobileNet-V1',
    'ResNet-50 -> MobileNet-V2': 'MobileNet-V2',
    'ResNet-50 -> ShuffleNet-V2': 'ShuffleNet-V2',
}


def test_real_shapes_are_the_documented_ones():
    assert set(bench.REAL_CONFIGS) == set(DOCUMENTED)
    shapes = bench.position_shapes(
        bench.REAL_CONFIGS['ResNet-50 -> ResNet-18'])
    assert shapes == [('mgd0', 64, 256), ('mgd1', 128, 512),
                      ('mgd2', 256, 1024), ('mgd3', 512, 2048)]
    for pair, student in DOCUMENTED.items():
        documented = [(p['student']['channels'], p['teacher']['channels'])
                      for _, p in documented_pair('ResNet-50', student)]
        read = [(s, t)
                for _, s, t in bench.position_shapes(bench.REAL_CONFIGS[pair])]
        assert read == documented, pair


def _tiny(tmp_path, *shapes):
    out = str(tmp_path / 'matching.json')
    argv = [
        '--shapes', *shapes, '--configs', FASHION, '--student', '8',
        '--teacher', '32', '--non-divisible-student', '6', '--repeats', '1',
        '--scipy-repeats', '1', '--out', out
    ]
    return bench.main(argv), out


def test_record_of_a_tiny_run(tmp_path):
    code, out = _tiny(tmp_path, 'real', 'random')
    with open(out) as f:
        record = json.load(f)
    assert record['benchmark'] == 'matching'
    verdict = record['verdict']
    assert code == (0 if verdict['passed'] else 1)
    # At these sizes the reference loop is not yet 8x slower: only the
    # speed-up checks may fail.
    checks = {c['check']: c['passed'] for c in verdict['checks']}
    assert sum('faster than reference' in c for c in checks) == 1
    assert all(ok for c, ok in checks.items()
               if 'faster than reference' not in c)
    assert '--shapes real random' in record['command']
    real = record['figures']['real']
    pair = real['mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k']
    assert [(p['position'], p['student'], p['teacher'])
            for p in pair['positions']] == [('mgd0', 4, 16), ('mgd1', 8, 32),
                                            ('mgd2', 16, 64)]
    for position in pair['positions']:
        assert set(position['methods']) == {
            'ours', 'ours_unpruned', 'reference', 'scipy'
        }
        assert position['optima_agree'] is True
        assert position['methods']['ours']['matched'] == position['teacher']
    assert pair['summed_median_s']['ours'] == pytest.approx(
        sum(p['methods']['ours']['median_s'] for p in pair['positions']))
    assert set(pair['times_slower_than_ours']) == {
        'ours_unpruned', 'reference', 'scipy'
    }
    cases = record['figures']['random']
    assert [(c['student'], c['teacher'], c['divisible'])
            for c in cases] == [(8, 32, True), (6, 32, False)]
    # The reference drops 32 - 5 * 6 teacher channels when 6 does not
    # divide 32: its total is not compared.
    assert cases[1]['methods']['reference']['matched'] == 30
    assert 'reference' not in cases[1]['total_differences']


def test_a_different_optimum_fails_the_verdict(tmp_path, monkeypatch):
    good = bench.scipy_tiled

    def worse(cost):
        pi = good(cost)
        # Swap the students of two teacher channels with different
        # students: still balanced, but no longer the optimum.
        j = int(np.flatnonzero(pi != pi[0])[0])
        pi[0], pi[j] = pi[j], pi[0]
        return pi

    monkeypatch.setattr(bench, 'scipy_tiled', worse)
    code, out = _tiny(tmp_path, 'random')
    with open(out) as f:
        record = json.load(f)
    assert code == 1 and record['verdict']['passed'] is False
    assert not any(c['optima_agree'] for c in record['figures']['random'])
