"""Export: the files DisEnt/REST and LfF read back give the same images, labels and counts."""

from __future__ import annotations

import os
import pickle
from decimal import Decimal
from glob import glob

import numpy as np
import pytest

from bffhq_fixtures import SMALL, default_rows, write_ffhq
from biasbench.errors import UserError
from biasbench.export import export, lff_tag
from biasbench.generators.build import generate
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.dataset_format.read import read_arrays
from conftest import synthetic_mnist, write_mnist
from helpers import assert_one_line_error, run

RATIOS = [Decimal("0.01"), Decimal("0.05")]


@pytest.fixture(scope="module")
def cmnist(tmp_path_factory):
    """A small CMNIST (1,200 train, 300 valid, 300 test): writing many small files is slow on shared disks."""
    from dataclasses import replace

    import biasbench.generators.cmnist as module

    src = write_mnist(tmp_path_factory.mktemp("mnist"), synthetic_mnist(1500, 300))
    keep, module.GENERATOR = module.GENERATOR, module.ColoredMNIST(replace(module.CMNIST, valid_size=300))
    try:
        return generate("cmnist", RATIOS, tmp_path_factory.mktemp("data"), 0, src, allow_unverified=True,
                        workers=2).path
    finally:
        module.GENERATOR = keep


@pytest.fixture(scope="module")
def bffhq(tmp_path_factory):
    import biasbench.generators.bffhq as module

    src = write_ffhq(tmp_path_factory.mktemp("ffhq"), default_rows())
    keep, module.GENERATOR = module.GENERATOR, module.BiasedFFHQ(SMALL)
    try:
        return generate("bffhq", RATIOS, tmp_path_factory.mktemp("data"), 0, src, workers=2).path
    finally:
        module.GENERATOR = keep


def attr(path: str) -> tuple[int, int]:
    """DisEnt's parse (data/util.py __getitem__): label and bias are the last two `_` fields of the path."""
    return int(path.split("_")[-2]), int(path.split("_")[-1].split(".")[0])


def disent_files(data_dir: str, dataset: str, percent: str, split: str) -> list[str]:
    """The globs of DisEnt's CMNISTDataset / CIFAR10Dataset / bFFHQDataset for one split."""
    root = data_dir + f"/{dataset}/{percent}"
    if split == "train":
        return glob(os.path.join(root, "align", "*", "*")) + glob(os.path.join(root, "conflict", "*", "*"))
    if dataset == "bffhq":
        files = glob(os.path.join(os.path.dirname(root), split, "*"))
        if split == "test":  # DisEnt keeps the bias-conflicting test images only
            files = [p for p in files if p.split("/")[-1].split(".")[0].split("_")[1]
                     != p.split("/")[-1].split(".")[0].split("_")[2]]
        return files
    if split == "valid":
        return glob(os.path.join(root, split, "*")) if dataset == "cmnist" else glob(os.path.join(root, split, "*", "*"))
    return glob(os.path.join(root, "../test", "*", "*"))


@pytest.mark.parametrize("dataset", ["cmnist", "cifar10c", "bffhq"])
def test_disent_loaders_read_back_labels_and_counts(cmnist, bffhq, tmp_path, dataset):
    # cifar10c's layout differs from cmnist's only in where it globs valid: checked on cmnist content
    path = bffhq if dataset == "bffhq" else cmnist
    folder = DatasetFolder(path, dataset)
    out = tmp_path / "disent_data"  # an underscore in the path, as in real setups: only the last two fields count
    export(folder, folder.configs(), "disent", out)
    for ratio in RATIOS:
        pct = f"{ratio * 100:f}".rstrip("0").rstrip(".") + "pct"
        for split in ("train", "valid", "test"):
            data = read_arrays(folder, ratio, split, verify=False)
            keep = data.label != data.bias if (dataset, split) == ("bffhq", "test") else np.ones(len(data.label), bool)
            files = disent_files(str(out), dataset, pct, split)
            assert len(files) == keep.sum(), (split, pct)
            got = sorted(attr(p) for p in files)
            assert got == sorted(zip(data.label[keep].tolist(), data.bias[keep].tolist())), (split, pct)
        train = read_arrays(folder, ratio, "train", verify=False)
        conflict = glob(str(out / dataset / pct / "conflict" / "*" / "*"))
        assert len(conflict) == (~train.aligned).sum()
        from PIL import Image

        one = conflict[0]
        row = int(np.flatnonzero(train.source_index == int(os.path.basename(one).split("_")[0]))[0])
        assert np.array_equal(np.asarray(Image.open(one).convert("RGB")), train.images[row])


def test_export_again_skips_identical_and_refuses_different(cmnist, bffhq, tmp_path):
    folder = DatasetFolder(cmnist, "cmnist")
    first = export(folder, folder.configs()[:1], "disent", tmp_path)
    assert set(first.written) == {"cmnist/1pct", "cmnist/test"}
    again = export(folder, folder.configs(), "disent", tmp_path)
    assert set(again.written) == {"cmnist/5pct"} and set(again.skipped) == {"cmnist/1pct", "cmnist/test"}
    other = DatasetFolder(bffhq, "bffhq")
    (tmp_path / "bffhq" / "test").mkdir(parents=True)
    with pytest.raises(UserError, match="already exists with other content"):
        export(other, other.configs(), "disent", tmp_path)


@pytest.mark.parametrize("dataset", ["cmnist", "bffhq"])
def test_lff_attribute_dataset_reads_back(cmnist, bffhq, tmp_path, dataset):
    folder = DatasetFolder(cmnist if dataset == "cmnist" else bffhq, dataset)
    export(folder, folder.configs(), "lff", tmp_path)
    for config in folder.configs():
        root = tmp_path / lff_tag(dataset, config)
        ratio = Decimal(config.name[:-3]) / 100
        for lff_split, ours in (("train", "train"), ("valid", "test"), ("valid_heldout", "valid")):
            images = np.load(root / lff_split / "images.npy")  # as LfF's AttributeDataset reads them
            attrs = np.load(root / lff_split / "attrs.npy")
            data = read_arrays(folder, ratio, ours, verify=False)
            assert images.dtype == np.uint8 and attrs.shape == (len(data.label), 2)
            assert np.array_equal(images, data.images)
            assert np.array_equal(attrs[:, 0], data.label) and np.array_equal(attrs[:, 1], data.bias)
        with open(root / "attr_names.pkl", "rb") as f:
            assert pickle.load(f) == (["digit", "color"] if dataset == "cmnist" else ["age", "gender"])
    if dataset == "cmnist":
        assert (tmp_path / "ColoredMNIST-Skewed0.01-Severity4" / "train").is_dir()


def test_export_cli(capsys, cmnist, tmp_path):
    code, out, _ = run(capsys, "export", "cmnist", "--ratio", "1pct", "--format", "disent", "--out", str(tmp_path / "o"),
                       "--data-dir", str(cmnist.parent))
    assert code == 0 and "wrote cmnist/1pct" in out and "--percent 1pct" in out
    code, _, err = run(capsys, "export", "cmnist", "--ratio", "2pct", "--format", "disent", "--out", str(tmp_path / "o"),
                       "--data-dir", str(cmnist.parent))
    assert_one_line_error(code, err, "no config 2pct")
    code, _, err = run(capsys, "export", "cmnist", "--format", "csv", "--out", str(tmp_path), "--data-dir", str(cmnist.parent))
    assert_one_line_error(code, err, "invalid choice")


def test_lff_tags_are_lffs_dataset_tags():
    from biasbench.dataset_format.folder import Config
    from biasbench.protocol import CIFAR10C

    cifar = Config("0.5pct", {"params": {"corruptions": list(CIFAR10C.type0), "severity": 5}}, {})
    assert lff_tag("cifar10c", cifar) == "CorruptedCIFAR10-Type0-Skewed0.005-Severity4"  # LfF calls severity + 1
    type1 = Config("5pct", {"params": {"corruptions": list(CIFAR10C.type1), "severity": 5}}, {})
    assert lff_tag("cifar10c", type1) == "CorruptedCIFAR10-Type1-Skewed0.05-Severity4"
    assert lff_tag("cmnist", Config("2pct", {"params": {"severity": 4}}, {})) == "ColoredMNIST-Skewed0.02-Severity4"
