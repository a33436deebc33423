"""Corrupted CIFAR-10: the corruption rules, worker-count invariance, work done once."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest

from biasbench.generators.build import generate
from biasbench.protocol import CIFAR10C
from helpers import N_PER_BATCH, N_TEST, write_fake_cifar
from lff_reference import lff_attr_labels

@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_fake_cifar(tmp_path_factory.mktemp("cifar-src"))


@pytest.fixture(scope="module")
def built(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("c10c")
    report = generate("cifar10c", [Decimal("0.01"), Decimal("0.05")], out, 0, source, allow_unverified=True, workers=2)
    return report


def test_counts_follow_the_rules(built, source):
    from datasets import load_dataset

    from biasbench.sources.cifar10 import load_cifar10

    raw = load_cifar10(source, allow_unverified=True)
    ds = load_dataset(str(built.path), "5pct")
    assert [len(ds[s]) for s in ("train", "valid", "test")] == [5 * N_PER_BATCH - 5000, 5000, N_TEST]
    train = ds["train"]
    labels, aligned = np.array(train["label"]), np.array(train["aligned"])
    lff = lff_attr_labels(raw.train_labels, 0.95)  # LfF's rule on the whole training file: its counts, its map
    for c in range(10):
        assert (~aligned[labels == c]).sum() == (lff[raw.train_labels == c] != c).sum()
    assert np.array_equal(np.array(train["bias_label"]), lff[np.array(train["source_index"])])
    assert ds["train"].features["bias_label"].names == list(CIFAR10C.type0)
    assert built.timings["images_rendered"] < 2 * (5 * N_PER_BATCH - 5000) + 5000 + N_TEST  # shared pairs once


def test_aligned_images_equal_the_corruption_of_their_source(built, source):
    """Recompute one image per corruption independently with imagecorruptions."""
    from datasets import load_dataset
    from imagecorruptions import corrupt

    from biasbench import rng
    from biasbench.sources.cifar10 import load_cifar10

    raw = load_cifar10(source, allow_unverified=True)
    test = load_dataset(str(built.path), "1pct", split="test")
    seen = set()
    for row in test:
        name = CIFAR10C.type0[row["bias_label"]]
        if name in seen:
            continue
        seen.add(name)
        key = rng.hash_keys(0, f"cifar10c/corruption/test/{name}", np.array([row["source_index"]]))[0]
        np.random.seed(int(key & np.uint64(0xFFFFFFFF)))
        expected = np.clip(np.asarray(corrupt(raw.test_images[row["source_index"]], corruption_name=name,
                                              severity=CIFAR10C.severity)), 0, 255).astype(np.uint8)
        assert np.array_equal(np.asarray(row["image"]), expected), name
    assert len(seen) == 10


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_one_worker_writes_the_same_bytes(built, source, tmp_path):
    report = generate("cifar10c", [Decimal("0.01"), Decimal("0.05")], tmp_path, 0, source, allow_unverified=True, workers=1)
    a = json.loads((built.path / "manifest.json").read_text())["files"]
    b = json.loads((report.path / "manifest.json").read_text())["files"]
    assert a == b


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_a_ratio_alone_gives_the_same_files(built, source, tmp_path):
    report = generate("cifar10c", [Decimal("0.01")], tmp_path, 0, source, allow_unverified=True, workers=2)
    a = json.loads((built.path / "manifest.json").read_text())["files"]
    b = json.loads((report.path / "manifest.json").read_text())["files"]
    shared = {k: v for k, v in a.items() if k.startswith(("data/1pct/", "data/common/"))}
    assert shared == {k: v for k, v in b.items() if k.startswith("data/")}


def test_frost_texture_cache_keeps_the_output(source):
    import imagecorruptions.corruptions as corruptions
    from imagecorruptions import corrupt

    from biasbench.generators.cifar10c import _cache_frost_textures

    image = (np.arange(3072) % 256).astype(np.uint8).reshape(32, 32, 3)
    real = corruptions.cv2

    def frost_all(seeds):  # 24 seeds draw each of the six textures several times
        out = []
        for s in seeds:
            np.random.seed(s)
            out.append(corrupt(image, corruption_name="frost", severity=5))
        return np.stack(out)

    plain = frost_all(range(24))
    _cache_frost_textures()
    try:
        cached, again = frost_all(range(24)), frost_all(range(24))
    finally:
        corruptions.cv2 = real
    assert np.array_equal(plain, cached) and np.array_equal(cached, again)
