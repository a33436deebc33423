"""The canonical Colored MNIST, built from the real MNIST in ../shared/data (skipped without it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biasbench import data
from biasbench.protocol import CMNIST
from biasbench.ratios import count_for, parse_ratios
from conftest import SHARED_MNIST, cli, needs_shared_mnist

pytestmark = needs_shared_mnist

# The identity of the canonical datasets (seed 0). The same on every machine:
# the fingerprint hashes decoded pixels and labels, not file bytes.
CANONICAL = {
    "0.5pct": "6c470ad38b2cd02cbc36e870473a2aab9cebb62964d9a9c227d0b9cd0090b521",
    "1pct": "8c8b4bf572839b64db64e48be168d2381674c078ea315f7bab2443fe95714247",
    "2pct": "b70daea99f0046548c58cd8badf842a2e76f2ff9364111c0990556498faba6cb",
    "5pct": "44d8c4f4dedc1e3418db5c3c34d4bbb213659494894b553a25640686a0a08928",
}


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    result = cli("generate", "cmnist", "--ratio", "all", "--source-dir", str(SHARED_MNIST), "--out", str(root))
    assert result.returncode == 0, result.stderr
    return root


def test_canonical_fingerprints(canonical):
    manifest = json.loads((canonical / "cmnist" / "manifest.json").read_text())
    assert {k: v["fingerprint"] for k, v in manifest["configs"].items()} == CANONICAL


def test_split_sizes_and_exact_conflict_counts(canonical):
    for ratio in parse_ratios("all"):
        train = data.load("cmnist", ratio, "train", root=canonical)
        assert len(train) == 55000
        labels, aligned = train.labels.numpy(), train.aligned.numpy()
        for c in range(10):
            n_c = int((labels == c).sum())
            assert int((~aligned[labels == c]).sum()) == count_for(n_c, ratio)
    valid = data.load("cmnist", "1pct", "valid", root=canonical)
    test = data.load("cmnist", "1pct", "test", root=canonical)
    assert (len(valid), len(test)) == (5000, 10000)
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    for split in (valid, test):  # unbiased: ~10% aligned, colours balanced per class
        assert abs(float(split.aligned.float().mean()) - 0.1) < 0.01


def test_images_are_coloured_mnist_digits(canonical):
    from biasbench.sources.mnist import load_mnist

    mnist = load_mnist(SHARED_MNIST)
    test = data.load("cmnist", "5pct", "test", root=canonical)
    images = test.images.numpy().astype(float)  # (N, 3, 28, 28)
    grey = mnist.test_images[test.source_index.numpy()].astype(float)
    assert np.all(images[:, :, grey[0] == 0][0] == 0)
    colours = np.array(CMNIST.colours)
    bright = grey > 200
    est = np.stack([(images[i][:, bright[i]] / grey[i][bright[i]]).mean(axis=1) for i in range(300)])
    assert np.abs(est - colours[test.bias.numpy()[:300]]).max() < 6 * CMNIST.sigma + 0.005
