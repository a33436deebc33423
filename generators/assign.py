"""Who gets which bias attribute: the split and conflict rules shared by the 10x10 datasets.

Colored MNIST and Corrupted CIFAR-10 follow one rule set (biasbench.protocol,
CONFLICT_RULES), chosen by name:

- "lff" (canonical): LfF's `make_attr_labels` on the whole source training
  file in file order, so the (source index -> attribute) map is LfF's; the
  valid split is a seeded hash draw among images aligned at LFF_EXACT_UP_TO,
  which leaves every LfF conflicting image in train; valid and test get LfF's
  rule with the aligned share 0.1.
- "random": a seeded hash rank holds `valid_size` training images out; in the
  train split, class c's first round(n_c x r) images in a per-class hash order
  are bias-conflicting and take the other attributes in turn (c+1, c+2, ...);
  valid and test get attributes balanced within each class. The order is shared
  by all ratios, so conflict sets are nested across ratios.

Either way an image may be drawn with several attributes across ratios;
generators render each distinct (image, attribute) pair once.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from biasbench import rng
from biasbench.errors import UserError
from biasbench.protocol import CANONICAL_CONFLICTS, CONFLICT_RULES, LFF_EXACT_UP_TO
from biasbench.ratios import count_for

UNBIASED_ALIGNED_SHARE = 0.1  # LfF's evaluation split: every attribute equally often in each class


def rank_within_class(seed: int, stream: str, index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each element, its position among same-class elements when sorted by hash."""
    position = np.empty(len(index), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = rng.rank(seed, stream, index[members])
        position[members[order]] = np.arange(len(members))
    return position


def lff_attributes(labels: np.ndarray, aligned_share: float, n_classes: int) -> np.ndarray:
    """LfF's attribute of every sample, `labels` in source-file order.

    Class c's samples, in file order, fill attribute 0, 1, ..., 9 up to the
    milestones round(n_c x cumsum(shares_c)), where shares_c holds
    `aligned_share` at c and an equal split of the rest elsewhere. The float
    arithmetic (float64, numpy's half-to-even round) is LfF's, so milestones
    at exact halves round as in its files.
    """
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=n_classes).astype(np.int64)
    eye = np.eye(n_classes)
    shares = aligned_share * eye + (1 - aligned_share) / (n_classes - 1) * (1 - eye)
    milestones = (sizes[:, np.newaxis] * np.cumsum(shares, axis=1)).round()
    out = np.empty(len(labels), dtype=np.int64)
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        # the first attribute whose milestone exceeds the sample's position in its class
        out[members] = np.searchsorted(milestones[c], np.arange(len(members)), side="right")
    if len(out) and out.max() >= n_classes:  # a milestone short of n_c: LfF's own code would fail here too
        raise UserError("LfF's milestones do not cover a class; the source labels look damaged")
    return out


class Assignment:
    """Source indices, labels and attributes of every split (no pixels)."""

    def __init__(self, train_labels: np.ndarray, test_labels: np.ndarray, seed: int, dataset: str, valid_size: int,
                 attribute: str, n_classes: int = 10, conflicts: str = CANONICAL_CONFLICTS):
        if conflicts not in CONFLICT_RULES:
            raise UserError(f"unknown conflict rule {conflicts!r}: use one of {', '.join(CONFLICT_RULES)}")
        self.seed, self.dataset, self.attribute, self.n = seed, dataset, attribute, n_classes
        self.conflicts = conflicts
        self.source_train_labels = np.asarray(train_labels)
        if len(train_labels) <= valid_size:  # an unverified source may be small: never a 0-row train split
            raise UserError(f"the source has {len(train_labels)} training images; {dataset} holds {valid_size} out "
                            f"for valid and needs more than that to train on")
        pool = np.arange(len(train_labels))
        if conflicts == "lff":  # only images LfF's rule keeps aligned up to LFF_EXACT_UP_TO
            aligned = lff_attributes(train_labels, 1.0 - LFF_EXACT_UP_TO, n_classes) == train_labels
            pool = pool[aligned]
            if len(pool) < valid_size:
                raise UserError(f"the source has {len(pool)} training images LfF's rule keeps aligned; {dataset} "
                                f"holds {valid_size} of them out for valid")
        holdout = pool[rng.rank(seed, f"{dataset}/valid-holdout", pool)]
        self.valid_index = np.sort(holdout[:valid_size])
        self.train_index = np.setdiff1d(np.arange(len(train_labels)), self.valid_index)
        self.train_labels = train_labels[self.train_index]
        self.valid_labels = train_labels[self.valid_index]
        self.test_index = np.arange(len(test_labels))
        self.test_labels = test_labels
        if conflicts == "random":
            self.train_rank = rank_within_class(seed, f"{dataset}/conflict", self.train_index, self.train_labels)
            self.class_sizes = np.bincount(self.train_labels, minlength=n_classes)
            self.conflict_attribute = (self.train_labels + 1 + self.train_rank % (n_classes - 1)) % n_classes

    def train_attributes(self, ratio: Decimal) -> np.ndarray:
        if self.conflicts == "lff":
            full = lff_attributes(self.source_train_labels, 1.0 - float(ratio), self.n)
            attributes = full[self.train_index]
        else:
            counts = np.array([count_for(int(n), ratio) for n in self.class_sizes])
            conflicting = self.train_rank < counts[self.train_labels]
            attributes = np.where(conflicting, self.conflict_attribute, self.train_labels)
        if ratio > 0 and np.array_equal(attributes, self.train_labels):
            raise UserError(f"ratio {ratio * 100:g} % of {len(self.train_labels)} training images rounds to "
                            "0 bias-conflicting samples in every class; use a larger ratio or source")
        return attributes

    def unbiased_attributes(self, split: str) -> np.ndarray:
        """Attribute independent of the label, balanced within each class."""
        index, labels = (self.valid_index, self.valid_labels) if split == "valid" else (self.test_index, self.test_labels)
        if self.conflicts == "lff":
            return lff_attributes(labels, UNBIASED_ALIGNED_SHARE, self.n)
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


def card_lines(rule: str, valid_size: int, source: str, n_source: int, attribute: str) -> list[str]:
    """The card's bullets on how train, valid and test got their attributes under `rule`."""
    if rule == "lff":
        return [
            f"- Bias-conflicting images: **LfF's rule** (`alinlab/LfF:make_dataset.py`, `make_attr_labels`), the "
            f"field's data. In each class, walked in {source} file order, the first images take the {attribute}s "
            f"below the class, the bulk its own {attribute}, the last images the {attribute}s above it, at the "
            f"milestones round(n_c x cumsum(shares)) that LfF computes over all {n_source:,} training images. Every "
            f"training image has the {attribute} LfF's code gives it, index for index (`source_index`).",
            f"- Valid: {valid_size:,} images held out of {source}-train by a seeded hash draw among the images "
            f"LfF's rule keeps aligned up to {LFF_EXACT_UP_TO:.0%}; so up to that ratio train holds every one of "
            "LfF's conflicting images and the per-class conflicting counts are LfF's, among "
            f"{n_source - valid_size:,} images instead of {n_source:,}: the conflicting share of train is "
            f"r x {n_source}/{n_source - valid_size} (e.g. {0.005 * n_source / (n_source - valid_size):.2%} in "
            "0.5pct). LfF itself has no valid split and trains on all images.",
            f"- Valid and test: LfF's rule with the aligned share 0.1 (each {attribute} equally often within each "
            "class, in file-order blocks), as LfF's unbiased evaluation split. Test is all of the source's test "
            "images.",
            "- To compare with published numbers: LfF, DisEnt and the papers that reuse their data measured on this "
            "rule; the construction `random` (`--conflicts random`) draws the same number of conflicting images at "
            "random and gives markedly higher unbiased accuracy (biasbench's leaderboard README measures by how much).",
        ]
    return [
        f"- Bias-conflicting images: **a random draw** (`--conflicts random`, not the field's data). "
        f"Valid: {valid_size:,} images held out of {source}-train by a seeded hash rank; train is the rest. "
        "In each class *c* with *n_c* training images, exactly round(*n_c* x *r*) (halves up) are bias-conflicting: "
        "the first ones in a seeded hash order shared by all ratios, so smaller ratios' conflicting sets are subsets "
        f"of larger ones. Conflicting {attribute}s cycle over the other nine (counts differ by at most one).",
        f"- Valid and test: {attribute} independent of the label, the ten balanced within each class (hash rank).",
        "- LfF's rule (the canonical construction, `--conflicts lff`) takes the first and last images of each class "
        "in the source file instead: published numbers were measured on that rule, and differ from this one's.",
    ]
