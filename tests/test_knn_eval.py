"""knn_eval.py's loaders: the labelled bank and the queries with the test
pipeline, also when a wrapper (the Fashion-MNIST recipe's
``ClassBalancedSubset``) holds the dataset that reads the images."""
import os.path as osp
import sys

import torch
from mmengine.registry import DefaultScope

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import knn_eval  # noqa: E402

TEST_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]


def folder_dataset(root, pipeline):
    return dict(type='CustomDataset', data_root=root, pipeline=pipeline)


def test_bank_of_a_wrapped_dataset_reads_with_the_test_pipeline(
        tiny_image_folder):
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomFlip', prob=1.0, direction='horizontal'),
        dict(type='PackInputs'),
    ]
    loader_cfg = dict(
        batch_size=4,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(
            type='ClassBalancedSubset',
            num_per_class=2,
            seed=0,
            dataset=folder_dataset(tiny_image_folder, train_pipeline)))
    plain_cfg = dict(
        loader_cfg, dataset=folder_dataset(tiny_image_folder, TEST_PIPELINE))
    assert knn_eval.image_dataset(loader_cfg['dataset'])['pipeline'] == \
        train_pipeline
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        bank = knn_eval.build_loader(loader_cfg, TEST_PIPELINE)
        plain = knn_eval.build_loader(plain_cfg, TEST_PIPELINE)
        images = {
            sample.img_path: inputs
            for batch in plain
            for inputs, sample in zip(batch['inputs'], batch['data_samples'])
        }
        seen = []
        for batch in bank:
            for inputs, sample in zip(batch['inputs'], batch['data_samples']):
                # Unflipped: the test pipeline replaced the wrapped one.
                assert torch.equal(inputs, images[sample.img_path])
                seen.append(int(sample.gt_label))
    # 2 of each of the 3 classes, in the wrapper's fixed order.
    assert sorted(seen) == [0, 0, 1, 1, 2, 2]
    assert bank.dataset.__class__.__name__ == 'ClassBalancedSubset'
