"""The Fashion-MNIST recipe reads the split it names.

The test writes tiny IDX files, gzipped as Debian ships them, prepares them
with tools/misc/prepare_fashion_mnist.py and builds the recipe's datasets
from its base config.
"""
import gzip
import os.path as osp
import struct
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'misc'))
import prepare_fashion_mnist  # noqa: E402

BASE = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                'fashion-mnist_bs128.py')


def write_idx(path, array):
    # IDX: zero, zero, type code 0x08 (unsigned byte), number of dims, then
    # the big-endian int32 sizes and the data.
    header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim)
    header += struct.pack(f'>{array.ndim}i', *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope='module')
def fashion_mnist_root(tmp_path_factory):
    src = tmp_path_factory.mktemp('debian')
    rng = np.random.default_rng(0)
    splits = {}
    for prefix, num in (('train', 12), ('t10k', 5)):
        images = rng.integers(0, 256, (num, 28, 28))
        labels = rng.integers(0, 10, (num, ))
        write_idx(src / f'{prefix}-images-idx3-ubyte.gz', images)
        write_idx(src / f'{prefix}-labels-idx1-ubyte.gz', labels)
        splits[prefix] = (images, labels)
    dst = tmp_path_factory.mktemp('fashion-mnist')
    prepare_fashion_mnist.main(['--src', str(src), '--dst', str(dst)])
    return str(dst), splits


@pytest.mark.parametrize('loader, prefix', [('train_dataloader', 'train'),
                                            ('val_dataloader', 't10k'),
                                            ('test_dataloader', 't10k')])
def test_recipe_datasets_read_their_split(fashion_mnist_root, loader,
                                          prefix):
    root, splits = fashion_mnist_root
    cfg = Config.fromfile(BASE)
    init_default_scope('mmpretrain')
    dataset_cfg = cfg[loader].dataset
    dataset_cfg.data_root = root
    dataset_cfg.pipeline = []
    dataset = DATASETS.build(dataset_cfg)

    images, labels = splits[prefix]
    assert len(dataset) == len(labels)
    for k in range(len(dataset)):
        item = dataset[k]
        np.testing.assert_array_equal(np.asarray(item['img']), images[k])
        assert int(item['gt_label']) == labels[k]


def test_prepare_names_missing_files(tmp_path):
    with pytest.raises(SystemExit, match='lacks'):
        prepare_fashion_mnist.main(['--src', str(tmp_path), '--dst',
                                    str(tmp_path / 'out')])
