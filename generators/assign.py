"""Who gets which bias attribute: the split and conflict rules shared by the 10x10 datasets.

Colored MNIST and Corrupted CIFAR-10 follow one rule set (biasbench.protocol):
a seeded hash rank holds `valid_size` training images out as the valid split;
in the train split, class c's first round(n_c x r) images in a per-class hash
order are bias-conflicting and take the other attributes in turn (c+1, c+2,
...), the rest take attribute c; valid and test get attributes balanced
within each class. Because the order is shared by all ratios, the conflict
sets are nested and an image keeps its attribute across ratios, which is
what lets generators render each distinct (image, attribute) pair once.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from biasbench import rng
from biasbench.errors import UserError
from biasbench.ratios import count_for


def rank_within_class(seed: int, stream: str, index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each element, its position among same-class elements when sorted by hash."""
    position = np.empty(len(index), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = rng.rank(seed, stream, index[members])
        position[members[order]] = np.arange(len(members))
    return position


class Assignment:
    """Source indices, labels and attributes of every split (no pixels)."""

    def __init__(self, train_labels: np.ndarray, test_labels: np.ndarray, seed: int, dataset: str, valid_size: int,
                 attribute: str, n_classes: int = 10):
        self.seed, self.dataset, self.attribute, self.n = seed, dataset, attribute, n_classes
        if len(train_labels) <= valid_size:  # an unverified source may be small: never a 0-row train split
            raise UserError(f"the source has {len(train_labels)} training images; {dataset} holds {valid_size} out "
                            f"for valid and needs more than that to train on")
        holdout = rng.rank(seed, f"{dataset}/valid-holdout", np.arange(len(train_labels)))
        self.valid_index = np.sort(holdout[:valid_size])
        self.train_index = np.sort(holdout[valid_size:])
        self.train_labels = train_labels[self.train_index]
        self.valid_labels = train_labels[self.valid_index]
        self.test_index = np.arange(len(test_labels))
        self.test_labels = test_labels
        self.train_rank = rank_within_class(seed, f"{dataset}/conflict", self.train_index, self.train_labels)
        self.class_sizes = np.bincount(self.train_labels, minlength=n_classes)
        self.conflict_attribute = (self.train_labels + 1 + self.train_rank % (n_classes - 1)) % n_classes

    def conflict_counts(self, ratio: Decimal) -> np.ndarray:
        counts = np.array([count_for(int(n), ratio) for n in self.class_sizes])
        if ratio > 0 and not counts.any():
            raise UserError(f"ratio {ratio * 100:g} % of {int(self.class_sizes.sum())} training images rounds to "
                            "0 bias-conflicting samples in every class; use a larger ratio or source")
        return counts

    def train_attributes(self, ratio: Decimal) -> np.ndarray:
        conflicting = self.train_rank < self.conflict_counts(ratio)[self.train_labels]
        return np.where(conflicting, self.conflict_attribute, self.train_labels)

    def unbiased_attributes(self, split: str) -> np.ndarray:
        """Attribute independent of the label, balanced within each class."""
        index, labels = (self.valid_index, self.valid_labels) if split == "valid" else (self.test_index, self.test_labels)
        stream = f"{self.dataset}/{split}-{self.attribute}"
        return rank_within_class(self.seed, stream, index, labels) % self.n

    def outputs(self, ratios: list[Decimal], need_common: bool) -> dict:
        """(split, ratio) -> (source split id 0=train 1=test, source index, labels, attributes)."""
        out = {}
        if need_common:
            out[("valid", None)] = (0, self.valid_index, self.valid_labels, self.unbiased_attributes("valid"))
            out[("test", None)] = (1, self.test_index, self.test_labels, self.unbiased_attributes("test"))
        for r in ratios:
            out[("train", r)] = (0, self.train_index, self.train_labels, self.train_attributes(r))
        return out
