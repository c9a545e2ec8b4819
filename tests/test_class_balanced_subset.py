"""ClassBalancedSubset keeps a fixed, class-balanced random subset."""
from collections import Counter

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from mgd_plugin.datasets import ClassBalancedSubset


class Labels(BaseDataset):
    """Items that are only a label and their own index."""

    def __init__(self, labels, **kwargs):
        self._labels = list(labels)
        super().__init__(ann_file='', data_prefix='', **kwargs)

    def load_data_list(self):
        return [
            dict(gt_label=int(label), index=k)
            for k, label in enumerate(self._labels)
        ]


# Class-sorted like many annotation files: 3 classes, 20 images each.
SORTED = [label for label in range(3) for _ in range(20)]


def kept(subset):
    return [subset[k]['index'] for k in range(len(subset))]


def test_every_class_gets_num_per_class_random_images():
    subset = ClassBalancedSubset(Labels(SORTED), num_per_class=5, seed=0)
    indices = kept(subset)
    assert len(subset) == 15
    assert Counter(SORTED[k] for k in indices) == {0: 5, 1: 5, 2: 5}
    # Not the first images of each class (what `indices=n` would give).
    assert indices != [0, 1, 2, 3, 4, 20, 21, 22, 23, 24, 40, 41, 42, 43, 44]
    assert indices == sorted(indices)
    assert [subset.get_cat_ids(k) for k in range(15)] == [[SORTED[k]]
                                                          for k in indices]


def test_fixed_by_seed_nested_and_disjoint_ranges():

    def indices(**kwargs):
        return set(kept(ClassBalancedSubset(Labels(SORTED), **kwargs)))

    assert indices(num_per_class=5, seed=3) == indices(num_per_class=5, seed=3)
    assert indices(num_per_class=5, seed=3) != indices(num_per_class=5, seed=4)
    # A larger subset only adds images; a later range is disjoint.
    assert indices(num_per_class=5, seed=3) < indices(num_per_class=8, seed=3)
    assert not indices(
        num_per_class=5, seed=3) & indices(
            num_per_class=5, seed=3, start=5)


def test_builds_from_config_lazily():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        subset = DATASETS.build(
            dict(
                type='ClassBalancedSubset',
                dataset=Labels(SORTED),
                num_per_class=2,
                lazy_init=True))
    assert subset.indices == []
    assert len(subset) == 6
    assert subset.metainfo == Labels(SORTED).metainfo


def test_too_few_images_names_the_class():
    labels = SORTED + [3] * 4
    with pytest.raises(ValueError, match='class 3 has 4 images'):
        ClassBalancedSubset(Labels(labels), num_per_class=3, start=2)


@pytest.mark.parametrize('kwargs', [
    dict(num_per_class=0),
    dict(num_per_class=2.0),
    dict(num_per_class=2, start=-1),
    dict(num_per_class=True),
])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='ClassBalancedSubset'):
        ClassBalancedSubset(Labels(SORTED), **kwargs)


def test_multi_label_is_refused():

    class TwoLabels(Labels):

        def get_cat_ids(self, idx):
            return [0, 1]

    with pytest.raises(ValueError, match='single-label'):
        ClassBalancedSubset(TwoLabels(SORTED), num_per_class=1)


def test_labels_are_read_through_the_dataset():
    # The wrapped dataset's own labels decide the classes.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200).tolist()
    subset = ClassBalancedSubset(Labels(labels), num_per_class=10, seed=1)
    counts = Counter(labels[k] for k in kept(subset))
    assert counts == {0: 10, 1: 10, 2: 10, 3: 10}
