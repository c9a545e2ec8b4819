"""Getting Fashion-MNIST, and the recipe's datasets reading their split.

The tests write tiny IDX files, gzipped as Debian ships them, and prepare
them with tools/misc/prepare_fashion_mnist.py: from the data folder, from
the Debian folder, through a (faked) apt-get install, or failing with a
message that says how to get the files. Then they build the recipe's
datasets from its base config.
"""
import gzip
import os
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
                'fashion-mnist-10k_bs128.py')
# Per class in the tiny training split: 4 train-subset images, 2 held out.
PER_CLASS = 6


def idx_bytes(array):
    # IDX: zero, zero, type code 0x08 (unsigned byte), number of dims, then
    # the big-endian int32 sizes and the data.
    header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim)
    header += struct.pack(f'>{array.ndim}i', *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_debian_files(folder, seed=0):
    """The four gzipped files of a tiny Fashion-MNIST; returns the arrays."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for prefix, labels in (('train', np.repeat(np.arange(10), PER_CLASS)),
                           ('t10k', np.arange(10).repeat(1)[:7])):
        labels = rng.permutation(labels)
        images = rng.integers(0, 256, (len(labels), 28, 28))
        for kind, array in (('images-idx3', images), ('labels-idx1', labels)):
            with gzip.open(
                    osp.join(folder, f'{prefix}-{kind}-ubyte.gz'), 'wb') as f:
                f.write(idx_bytes(array))
        splits[prefix] = (images, labels)
    return splits


@pytest.fixture(scope='module')
def fashion_mnist_root(tmp_path_factory):
    src = str(tmp_path_factory.mktemp('debian'))
    splits = write_debian_files(src)
    dst = str(tmp_path_factory.mktemp('fashion-mnist'))
    assert prepare_fashion_mnist.prepare(
        dst, src, allow_apt=False, log=lambda m: None) == 'src'
    return dst, splits


def recipe_dataset(loader, root):
    cfg = Config.fromfile(BASE)
    init_default_scope('mmpretrain')
    dataset_cfg = cfg[loader].dataset if loader.endswith(
        '_dataloader') else cfg[loader]

    def retarget(node):
        if isinstance(node, dict):
            if 'data_root' in node:
                node['data_root'] = root
                node['pipeline'] = []
            if node.get('type') == 'ClassBalancedSubset':
                # The tiny split has 6 images per class: 4 train, 2 held out.
                node['num_per_class'] = 4 if node.get('start', 0) == 0 else 2
                node['start'] = min(node.get('start', 0), 4)
            for value in node.values():
                retarget(value)

    retarget(dataset_cfg)
    return DATASETS.build(dataset_cfg)


def read_items(dataset):
    return [(np.asarray(item['img']), int(item['gt_label']))
            for item in (dataset[k] for k in range(len(dataset)))]


def test_test_loaders_read_all_test_images(fashion_mnist_root):
    root, splits = fashion_mnist_root
    images, labels = splits['t10k']
    for loader in ('val_dataloader', 'test_dataloader'):
        items = read_items(recipe_dataset(loader, root))
        assert len(items) == len(labels)
        for (image,
             label), want_image, want_label in zip(items, images, labels):
            np.testing.assert_array_equal(image, want_image)
            assert label == want_label


def test_train_subset_and_held_out_are_balanced_disjoint_training_images(
        fashion_mnist_root):
    root, splits = fashion_mnist_root
    images, labels = splits['train']
    train = read_items(recipe_dataset('train_dataloader', root))
    heldout = read_items(recipe_dataset('heldout_dataset', root))
    plain = read_items(recipe_dataset('train_images_no_aug', root))

    def positions(items):
        found = []
        for image, label in items:
            match = [
                k for k in range(len(images))
                if np.array_equal(images[k], image)
            ]
            assert len(match) == 1 and labels[match[0]] == label
            found.append(match[0])
        return found

    train_at, heldout_at = positions(train), positions(heldout)
    assert np.bincount(labels[train_at]).tolist() == [4] * 10
    assert np.bincount(labels[heldout_at]).tolist() == [2] * 10
    assert not set(train_at) & set(heldout_at)
    # The matching pass reads the training subset itself.
    assert positions(plain) == train_at


def test_prepare_uses_the_data_folder_first(tmp_path):
    dst = str(tmp_path / 'data')
    write_debian_files(dst)
    logs = []
    # Gzipped files in the data folder are un-gzipped in place.
    assert prepare_fashion_mnist.prepare(
        dst, str(tmp_path / 'nowhere'), allow_apt=False,
        log=logs.append) == 'dst-gz'
    for name in prepare_fashion_mnist.FILES:
        assert osp.isfile(osp.join(dst, name))
    assert prepare_fashion_mnist.prepare(
        dst, str(tmp_path / 'nowhere'), allow_apt=False,
        log=logs.append) == 'dst'


def test_prepare_installs_the_debian_package_as_root(tmp_path, monkeypatch):
    debian = str(tmp_path / 'usr-share')
    monkeypatch.setattr(prepare_fashion_mnist, 'DEBIAN_DIR', debian)
    monkeypatch.setattr(prepare_fashion_mnist, 'can_apt_install', lambda: True)
    installs = []

    def fake_apt_install(log):
        installs.append(1)
        write_debian_files(debian)

    monkeypatch.setattr(prepare_fashion_mnist, 'apt_install', fake_apt_install)
    dst = str(tmp_path / 'data')
    assert prepare_fashion_mnist.prepare(
        dst, debian, log=lambda m: None) == 'apt'
    assert installs == [1]
    assert prepare_fashion_mnist.prepare(
        dst, debian, log=lambda m: None) == 'dst'
    assert installs == [1]


def test_prepare_says_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_fashion_mnist, 'can_apt_install',
                        lambda: False)
    dst = str(tmp_path / 'data')
    with pytest.raises(SystemExit) as error:
        prepare_fashion_mnist.main([
            '--src', prepare_fashion_mnist.DEBIAN_DIR + '-absent', '--dst', dst
        ])
    message = str(error.value)
    assert 'Fashion-MNIST was not found' in message
    assert osp.abspath(dst) in message
    assert 'apt-get install -y dataset-fashion-mnist' in message
    assert 't10k-labels-idx1-ubyte' in message


def test_prepare_refuses_a_truncated_file(tmp_path):
    dst = str(tmp_path / 'data')
    write_debian_files(dst)
    prepare_fashion_mnist.prepare(dst, allow_apt=False, log=lambda m: None)
    path = osp.join(dst, 't10k-images-idx3-ubyte')
    with open(path, 'r+b') as f:
        f.truncate(osp.getsize(path) - 1)
    with pytest.raises(ValueError, match='t10k-images-idx3-ubyte.*truncated'):
        prepare_fashion_mnist.prepare(dst, allow_apt=False, log=lambda m: None)
