"""The dataset registry: one line per dataset (its generator under generators/ and what training needs to know).

Adding a dataset = one generator module under generators/ + one `DATASETS.add` line here. What a profile or
a method needs from a dataset is its `family` (biasbench/protocol/profiles.py trains each family one way;
DisEnt's and MRM's numbers are per family), never its name.
"""

from __future__ import annotations

from dataclasses import dataclass

from biasbench.registry import Registry

# Families: datasets of one family share a training protocol and methods' per-dataset numbers.
DIGITS = "digits"  # small coloured digits: Simple CNN or MLP, no augmentation (CMNIST)
NATURAL = "natural"  # small natural images: ResNet-18, crop + flip (CIFAR-10-C)
FACES = "faces"  # face photographs: ResNet-18 at a larger size (BFFHQ)
FAMILIES = (DIGITS, NATURAL, FACES)


@dataclass(frozen=True)
class DatasetInfo:
    family: str  # one of FAMILIES
    image_size: int  # the side of the stored images
    channels: int  # of the stored images


DATASETS = Registry("dataset")
_G = "biasbench.generators."
DATASETS.add("cmnist", _G + "cmnist:GENERATOR", DatasetInfo(DIGITS, 28, 3))
DATASETS.add("cifar10c", _G + "cifar10c:GENERATOR", DatasetInfo(NATURAL, 32, 3))
DATASETS.add("bffhq", _G + "bffhq:GENERATOR", DatasetInfo(FACES, 128, 3))

names, ordered, canonical, get = DATASETS.names, DATASETS.ordered, DATASETS.canonical, DATASETS.get


def family(dataset: str) -> str:
    return DATASETS.info(dataset).family
