"""A fixed, class-balanced random subset of a classification dataset."""
import copy
from typing import List, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmpretrain.registry import DATASETS


@DATASETS.register_module()
class ClassBalancedSubset:
    """The same number of images of every class, drawn at random once.

    MMEngine's ``indices`` argument keeps the *first* n images, which in a
    class-ordered list is a few classes only and in any list is a subset
    that changes when n does. Here one permutation of the whole dataset,
    drawn from ``seed``, fixes an order; each class contributes its images
    at positions ``[start, start + num_per_class)`` of that order. Two
    subsets with the same seed and disjoint ranges are disjoint (a training
    part and a held-out part of one split), and a larger
    ``num_per_class`` only adds images. The kept images are served in
    their original order.

    Args:
        dataset (BaseDataset | dict): the wrapped single-label dataset.
        num_per_class (int): images kept from every class.
        seed (int): seed of the permutation.
        start (int): images of each class skipped in permutation order.
        lazy_init (bool): load the annotations on first use only.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 num_per_class: int,
                 seed: int = 0,
                 start: int = 0,
                 lazy_init: bool = False) -> None:
        for name, value, low in (('num_per_class', num_per_class, 1),
                                 ('seed', seed, 0), ('start', start, 0)):
            if isinstance(value,
                          bool) or not isinstance(value, int) or value < low:
                raise ValueError(f'ClassBalancedSubset.{name} must be an '
                                 f'int >= {low}, got {value!r}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        self.num_per_class = num_per_class
        self.seed = seed
        self.start = start
        self.indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset and choose the kept indices."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        labels = np.array(
            [self._single_label(index) for index in range(len(self.dataset))],
            dtype=np.int64)
        order = np.random.default_rng(self.seed).permutation(len(labels))
        stop = self.start + self.num_per_class
        kept = []
        for label in np.unique(labels):
            members = order[labels[order] == label]
            if len(members) < stop:
                raise ValueError(
                    f'ClassBalancedSubset: class {int(label)} has '
                    f'{len(members)} images, fewer than start + '
                    f'num_per_class = {self.start} + {self.num_per_class}')
            kept.append(members[self.start:stop])
        self.indices = np.sort(np.concatenate(kept)).tolist()
        self._fully_initialized = True

    def _single_label(self, index: int) -> int:
        cat_ids = self.dataset.get_cat_ids(index)
        if len(cat_ids) != 1:
            raise ValueError('ClassBalancedSubset needs single-label data; '
                             f'image {index} has labels {cat_ids}')
        return int(cat_ids[0])

    @force_full_init
    def __len__(self) -> int:
        return len(self.indices)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self.indices[idx])

    @force_full_init
    def get_cat_ids(self, idx: int) -> List[int]:
        return self.dataset.get_cat_ids(self.indices[idx])

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        return self.dataset[self.indices[idx]]
