"""benchmark_train_step.py: its --compare mode (every method of the recipe
side by side, with memory), the memory measurement, the CUDA options
without CUDA, and the records it writes (tiny settings, in this process).
"""
import json
import os.path as osp
import sys

import pytest
import torch

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_train_step as bench  # noqa: E402

FASHION = 'configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py'
R50_R18 = 'configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py'
TINY = [
    '--config', FASHION, '--batch-size', '2', '--img-size', '28', '--steps',
    '2', '--warmup', '1', '--threads', '1', '--matching-batches', '1'
]
MIB = 2.0**20


def test_step_peak_is_the_high_water_mark_above_the_start():
    kept = []

    def step():
        a = torch.ones(2 * 2**20 // 4)  # 2 MiB
        b = a * 2  # 4 MiB held: the peak
        del a
        kept.append(b + 1)  # 4 MiB held again, 2 of them kept
        del b

    torch.ones(1)  # allocations before the step do not count
    peak = bench.step_peak_bytes(step, torch.device('cpu'))
    assert peak == pytest.approx(4 * MIB, rel=0.01)
    # What the first step kept is freed by the next: no growth then.
    peak = bench.step_peak_bytes(kept.clear, torch.device('cpu'))
    assert peak == 0


def test_state_is_parameters_buffers_and_optimiser_state():
    model = torch.nn.Sequential(
        torch.nn.Linear(10, 20), torch.nn.BatchNorm1d(20))
    optim_wrapper, count = bench.make_optim_wrapper(model)
    assert count == 10 * 20 + 20 + 2 * 20
    # Buffers: running mean and variance (float) and the batch count.
    expected = (count + 2 * 20) * 4 + 8
    assert bench.state_bytes(model, optim_wrapper) == expected
    model(torch.randn(4, 10)).sum().backward()
    optim_wrapper.step()  # SGD momentum: one buffer per parameter
    assert bench.state_bytes(model, optim_wrapper) == expected + count * 4


def test_sibling_configs():
    for mgd in (R50_R18, 'configs/mgd/mgd-amp_resnet50-mobilenet-v1_8xb32_'
                'in1k.py'):
        pair = osp.basename(mgd).split('_', 1)[1]
        for method in ('kd', 'ofd'):
            found = bench.sibling_config(osp.join(REPO_ROOT, mgd), method)
            assert found == osp.join(REPO_ROOT, 'configs', 'mgd',
                                     f'{method}_{pair}')
    fashion = osp.join(REPO_ROOT, FASHION)
    assert bench.sibling_config(fashion, 'ofd') == osp.join(
        REPO_ROOT, 'configs', 'ofd',
        'ofd_resnet18-w16-w4_10e_fashion-mnist-10k.py')
    with pytest.raises(ValueError, match='--kd-config'):
        bench.sibling_config(
            osp.join(REPO_ROOT, 'configs/mgd/resnet18_8xb32_in1k.py'), 'kd')
    with pytest.raises(FileNotFoundError, match='--ofd-config'):
        bench.sibling_config(
            osp.join(REPO_ROOT, 'configs/mgd/mgd-amp_no-such-pair.py'), 'ofd')


def test_cuda_options_need_cuda(capsys):
    if torch.cuda.is_available():
        args = bench.parse_args(['--device', 'cuda', '--amp'])
        assert args.out.endswith('train_step_cuda_amp.json')
    else:
        for argv, message in ((['--device', 'cuda'], 'CUDA is not available'),
                              (['--amp'], '--amp needs --device cuda')):
            with pytest.raises(SystemExit):
                bench.parse_args(argv)
            assert message in capsys.readouterr().err
    assert bench.parse_args(['--compare'
                             ]).out == osp.join(REPO_ROOT, 'benchmarks',
                                                'results',
                                                'train_step_methods.json')


def test_compare_record(tmp_path):
    out = str(tmp_path / 'methods.json')
    code = bench.main(TINY +
                      ['--compare', '--memory-steps', '1', '--out', out])
    with open(out) as f:
        record = json.load(f)
    assert record['benchmark'] == 'train_step_methods'
    assert code == (0 if record['verdict']['passed'] else 1)
    methods = record['figures']['methods']
    mgd = [f'mgd:{reducer}' for reducer in bench.REDUCERS]
    assert list(methods) == ['alone', 'floor', 'kd', 'ofd', *mgd]
    assert methods['kd']['config'] == \
        'configs/kd/kd_resnet18-w16-w4_10e_fashion-mnist-10k.py'
    for name, row in methods.items():
        assert row['loss_finite'], name
        assert row['times']['median'] > 0
        assert row['to_floor_paired'] > 0
        memory = row['memory']
        assert memory['step_peak_mb'] > 0 and memory['state_mb'] > 0
        assert memory['peak_mb'] == pytest.approx(memory['step_peak_mb'] +
                                                  memory['state_mb'])
    # The teacher's weights are state of every method but the student alone;
    # the distillers' trainable connectors add their own.
    assert methods['alone']['memory']['state_mb'] < \
        methods['floor']['memory']['state_mb']
    assert methods['alone']['trainable_params'] == \
        methods['floor']['trainable_params']
    for name in ['kd', 'ofd', *mgd]:
        assert methods[name]['trainable_params'] >= \
            methods['floor']['trainable_params']
    assert methods['ofd']['trainable_params'] > \
        methods['floor']['trainable_params']
    checks = record['verdict']['checks']
    assert [c['check'].split(')')[0] for c in checks
            ] == [f'MGD ({reducer}' for reducer in bench.REDUCERS]
    assert record['settings']['compare'] is True


def test_reducer_record(tmp_path):
    out = str(tmp_path / 'steps.json')
    bench.main(TINY + ['--profile-steps', '0', '--out', out])
    with open(out) as f:
        record = json.load(f)
    assert record['benchmark'] == 'train_step'
    (row, ) = record['figures']['reducers']
    assert row['reducer'] == 'AbsMaxPoolReducer'
    assert set(row['times']) == {'floor', 'nets', 'mgd'}
    assert set(row['to_floor_paired']) == {'nets', 'mgd'}
    (check, ) = record['verdict']['checks']
    assert check['check'].startswith('MGD (AbsMaxPoolReducer) step / floor')
    assert check['passed'] == (
        row['to_floor_paired']['mgd'] <= bench.TARGET_RATIO)
