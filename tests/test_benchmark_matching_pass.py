"""benchmark_matching_pass.py: the pass against a plain forward, its share
of an epoch, and the record it writes (tiny settings, in this process)."""
import json
import os.path as osp
import statistics
import sys

import pytest

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_matching_pass as bench  # noqa: E402

FASHION = 'configs/mgd/mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py'
R50_R18 = 'configs/mgd/mgd-amp_resnet50-resnet18_8xb32_in1k.py'


def test_record_of_a_tiny_run(tmp_path):
    out = str(tmp_path / 'pass.json')
    code = bench.main([
        FASHION, '--num-samples', '12', '--world-sizes', '1', '--data',
        'random', '--img-size', '28', '--repeats', '2', '--train-steps', '1',
        '--train-batch-size', '4', '--train-images', '10000', '--out', out
    ])
    with open(out) as f:
        record = json.load(f)
    assert record['benchmark'] == 'matching_pass'
    assert record['config'] == FASHION
    (rank, ) = record['figures']['per_rank']
    assert rank['world_size'] == 1 and rank['images_per_rank'] == [12]
    result = record['figures']['comparison']
    seconds = result['seconds']
    assert len(seconds['matching_pass']) == len(seconds['plain_forward']) == 2
    assert result['pass_to_forward_paired'] == pytest.approx(
        statistics.median(p / f for p, f in zip(seconds['matching_pass'],
                                                seconds['plain_forward'])))
    per_image = result['seconds_per_image']
    assert per_image['matching_pass'] == pytest.approx(
        statistics.median(seconds['matching_pass']) / 12)
    assert per_image['train_step'] == pytest.approx(
        statistics.median(result['train_step']['seconds']) / 4)
    epoch = result['epoch']
    # The recipe's matching: 2000 images before every epoch.
    assert (epoch['matching_images'], epoch['matching_interval_epochs'],
            epoch['training_images']) == (2000, 1, 10000)
    pass_s = 2000 * per_image['matching_pass']
    train_s = 10000 * per_image['train_step']
    assert epoch['share'] == pytest.approx(pass_s / (pass_s + train_s))
    (check, ) = record['verdict']['checks']
    assert check['passed'] == (
        result['pass_to_forward_paired'] <= bench.TARGET_RATIO)
    assert code == (0 if check['passed'] else 1)


def test_bad_input_is_named(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args([FASHION, '--data', 'random'])
    assert '--data random needs --img-size' in capsys.readouterr().err
    # ImageNet is not on this machine: its images cannot be counted.
    from mmengine.config import Config
    data_root = Config.fromfile(osp.join(
        REPO_ROOT, R50_R18)).train_dataloader.dataset.data_root
    assert not osp.exists(data_root)
    with pytest.raises(SystemExit, match='--train-images'):
        bench.main([
            R50_R18, '--data', 'random', '--img-size', '32', '--world-sizes',
            '--out', '/dev/null'
        ])
    kd = 'configs/kd/kd_resnet18-w16-w4_10e_fashion-mnist-10k.py'
    with pytest.raises(ValueError, match='MatchingUpdateHook'):
        bench.main([kd, '--out', '/dev/null'])
