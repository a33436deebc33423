"""The canonical Colored MNIST, built from the real MNIST in ../shared/data (skipped without it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biasbench import data
from biasbench.protocol import CMNIST
from biasbench.ratios import parse_ratios
from conftest import SHARED_MNIST, cli, needs_shared_mnist
from lff_reference import lff_attr_labels

pytestmark = [needs_shared_mnist, pytest.mark.slow]

# The identity of the canonical datasets (seed 0, LfF's conflict rule). The same on every machine:
# the fingerprint hashes decoded pixels and labels, not file bytes.
CANONICAL = {
    "0.5pct": "1653187086c14e991040d80eb1b9a11ea6583f771486f67256f5ae7c0709c2ac",
    "1pct": "0599f75842153a28b447ad83a42ce44cd39fe306b159bceb6e3b73118e4176a8",
    "2pct": "f5d66174beb4ed552f6978331d92512c6466fc572fc08e80eb2572b9407688f6",
    "5pct": "a424b91218a4497c0e713f38b61b4eeca280529f9f692008b52da98c104a3c68",
}
# `--conflicts random`: the random-draw construction, whose content is that of the canonical datasets
# before LfF's rule became canonical (the committed records trained on it carry these fingerprints).
RANDOM = {
    "0.5pct": "c7afdb37bfc40c30bcaf698ff2d9e5c5ab871a61ff241a526d7f5c4fed41d36b",
    "1pct": "7836a39ff7ab793fd8ff9a8a6f78caa10423214042fa1276c2a046acb39c1566",
    "2pct": "0afc27cf180b20ecd7b4e924eec85b450f193c0b39227cf0b4616d685c3385f1",
    "5pct": "2d0c31ee10f726f2752b5057e77e9452318802c3ab63336659373309d8e5bb38",
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


def test_random_construction_fingerprints(tmp_path):
    result = cli("generate", "cmnist", "--conflicts", "random", "--ratio", "all", "--source-dir", str(SHARED_MNIST),
                 "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "cmnist-random" / "manifest.json").read_text())
    assert {k: v["fingerprint"] for k, v in manifest["configs"].items()} == RANDOM


def test_split_sizes_and_exact_conflict_counts(canonical):
    from biasbench.sources.mnist import load_mnist

    mnist = load_mnist(SHARED_MNIST)
    for ratio in parse_ratios("all"):
        train = data.load("cmnist", ratio, "train", root=canonical)
        assert len(train) == 55000
        labels, aligned = train.labels.numpy(), train.aligned.numpy()
        lff = lff_attr_labels(mnist.train_labels, 1.0 - float(ratio))  # LfF's rule on all 60,000
        assert np.array_equal(train.bias.numpy(), lff[train.source_index.numpy()])
        for c in range(10):  # every one of LfF's conflicting images is in train
            assert int((~aligned[labels == c]).sum()) == int((lff[mnist.train_labels == c] != c).sum())
    valid = data.load("cmnist", "1pct", "valid", root=canonical)
    test = data.load("cmnist", "1pct", "test", root=canonical)
    assert (len(valid), len(test)) == (5000, 10000)
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    for split in (valid, test):  # unbiased: ~10% aligned, colours balanced per class
        assert abs(float(split.aligned.float().mean()) - 0.1) < 0.01
    assert np.array_equal(test.bias.numpy(), lff_attr_labels(mnist.test_labels, 0.1))


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


def test_erm_learns_the_colour_and_reweighting_counters_it_on_real_cmnist(canonical, tmp_path):
    from biasbench.cli import main

    results = {}
    for method in ("erm", "reweighted_erm"):
        argv = ["run", "--method", method, "--ratio", "1pct", "--seeds", "1", "--steps", "60", "--device", "cpu",
                "--profile", "cpu", "--data-dir", str(canonical), "--results", str(tmp_path)]
        assert main(argv) == 0
        (path,) = [p for p in (tmp_path / "runs").glob(f"*-{method}-*.json")]
        results[method] = json.loads(path.read_text())["final"]["test"]
    erm, rw = results["erm"], results["reweighted_erm"]
    assert erm["aligned"] > 0.9 and erm["conflicting"] < 0.5  # ERM reads the colour
    assert rw["conflicting"] > erm["conflicting"] + 0.15  # beta = 30 on the 1% conflicting samples helps


def test_run_generates_missing_ratios_first_in_one_go(tmp_path, capsys):
    from biasbench.cli import main
    from biasbench.dataset_format.folder import DatasetFolder

    argv = ["run", "--method", "erm", "--ratio", "1pct,5pct", "--seeds", "1", "--steps", "2", "--device", "cpu",
            "--data-dir", str(tmp_path / "data"), "--source-dir", str(SHARED_MNIST), "--results", str(tmp_path / "r")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("generating first") == 1 and "cmnist 1pct, 5pct not in" in out
    assert [c.name for c in DatasetFolder(tmp_path / "data" / "cmnist", "cmnist").configs()] == ["1pct", "5pct"]
    assert len(list((tmp_path / "r" / "runs").glob("*.json"))) == 2
