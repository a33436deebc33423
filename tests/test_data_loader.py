"""biasbench.data.load: tensors for training, decoded once, cached by content fingerprint."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from biasbench import data
from biasbench.errors import UserError
from biasbench.dataset_format.png import encode_rgb


@pytest.fixture(scope="module")
def root(cmnist_root):
    return cmnist_root  # conftest: one shared build


def test_tensors_match_the_parquet_rows(root, fixture_mnist):
    from datasets import load_dataset

    from biasbench.sources.mnist import load_mnist
    from lff_reference import lff_attr_labels

    split = data.load("cmnist", "1pct", "train", root=root)
    assert split.images.shape == (2000, 3, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.dtype == torch.int64 and split.bias.dtype == torch.int64
    ds = load_dataset(str(root / "cmnist"), "1pct", split="train")
    assert split.labels.tolist() == ds["label"]
    assert split.bias.tolist() == ds["bias_label"]
    assert split.aligned.tolist() == ds["aligned"]
    for i in (0, 777, 1999):
        assert np.array_equal(split.images[i].permute(1, 2, 0).numpy(), np.asarray(ds[i]["image"]))
    # LfF's rule (the canonical construction): train holds every image LfF's code makes conflicting at 1 %
    source = load_mnist(fixture_mnist, allow_unverified=True).train_labels
    assert int((~split.aligned).sum()) == int((lff_attr_labels(source, 0.99) != source).sum()) > 0


def test_second_load_comes_from_the_fingerprint_cache(root, monkeypatch):
    first = data.load("cmnist", 0.01, "test", root=root)
    cache = root / "cmnist" / data.CACHE_DIR / f"{first.fingerprint}.npz"
    assert cache.is_file()

    def no_decoding(*a, **k):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(data, "read_arrays", no_decoding)
    second = data.load("cmnist", "1%", "test", root=root)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def test_modified_shard_is_detected_on_first_decode(root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".cache"))
    shard = next((copy / "cmnist" / "data" / "common").glob("valid-*.parquet"))
    table = pq.read_table(shard)
    pngs = table.column("image").combine_chunks().field("bytes").to_pylist()
    pngs[5] = encode_rgb(np.full((1, 28, 28, 3), 9, dtype=np.uint8))[0]
    image = pa.StructArray.from_arrays([pa.array(pngs, pa.binary()), pa.nulls(len(pngs), pa.string())], names=["bytes", "path"])
    pq.write_table(table.set_column(0, table.schema.field(0), image), shard)
    with pytest.raises(UserError, match="fingerprint"):
        data.load("cmnist", "1pct", "valid", root=copy)


def test_missing_config_tells_how_to_generate_it(root):
    with pytest.raises(UserError, match="biasbench generate cmnist --ratio 2pct"):
        data.load("cmnist", "2pct", "train", root=root)
    with pytest.raises(UserError, match="no generated cmnist"):
        data.load("cmnist", "1pct", "train", root=root, seed=3)


def test_path_may_be_a_folder_or_a_hub_id(root, monkeypatch):
    from biasbench.hub import remote

    by_path = data.load("cmnist", "1pct", "test", path=root / "cmnist")
    fetched = []
    monkeypatch.setattr(remote, "fetch", lambda repo, revision=None: fetched.append(repo) or root / "cmnist")
    by_hub = data.load("cmnist", "1pct", "test", path="hf://me/colored-mnist")
    assert fetched == ["me/colored-mnist"] and torch.equal(by_path.images, by_hub.images)
