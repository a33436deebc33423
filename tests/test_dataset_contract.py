"""Every registered dataset keeps the format's contract, end to end on a small fixture source: it generates
deterministically, verifies, loads with `datasets.load_dataset` and as tensors, and exports in both references'
layouts; its registry entry is complete.

A new dataset is checked here by its registry line plus one fixture source below (README: adding a dataset)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from biasbench import generators
from biasbench.data import load as load_tensors
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.dataset_format.verify import verify
from biasbench.export import export
from biasbench.generators.build import generate

pytestmark = pytest.mark.slow  # ~20 s: three generations twice, two exports each
RATIO = Decimal("0.05")


def cmnist_source(request, tmp_path_factory, monkeypatch):
    return request.getfixturevalue("fixture_mnist")


def cifar10c_source(request, tmp_path_factory, monkeypatch):
    from helpers import write_fake_cifar

    return write_fake_cifar(tmp_path_factory.mktemp("cifar-src"))


def bffhq_source(request, tmp_path_factory, monkeypatch):
    import biasbench.generators.bffhq as module
    from bffhq_fixtures import SMALL, default_rows, write_ffhq

    monkeypatch.setattr(module, "GENERATOR", module.BiasedFFHQ(SMALL))  # 16 px, 200 train images per class
    return write_ffhq(tmp_path_factory.mktemp("ffhq"), default_rows())


# dataset -> a writer of a small source release in its real on-disk format
SOURCES = {"cmnist": cmnist_source, "cifar10c": cifar10c_source, "bffhq": bffhq_source}


def test_every_registered_dataset_has_a_fixture_source():
    assert sorted(SOURCES) == sorted(generators.names())


@pytest.mark.parametrize("name", generators.names())
def test_every_dataset_keeps_the_formats_contract(name, request, tmp_path_factory, monkeypatch, tmp_path):
    from datasets import load_dataset

    source = SOURCES[name](request, tmp_path_factory, monkeypatch)
    first = generate(name, [RATIO], tmp_path / "a", 0, source, allow_unverified=True, workers=1)
    again = generate(name, [RATIO], tmp_path / "b", 0, source, allow_unverified=True, workers=2)
    folder, other = DatasetFolder(first.path, name), DatasetFolder(again.path, name)
    (config,), (config_again,) = folder.configs(), other.configs()
    assert config.name == "5pct" and config.fingerprint == config_again.fingerprint, "not deterministic"
    assert all(check.ok for check in verify(first.path)), [c.line() for c in verify(first.path)]

    gen = generators.get(name)
    loaded = load_dataset(str(first.path), config.name)
    for split in ("train", "valid", "test"):
        n = int(config.splits[split]["num_examples"])
        assert loaded[split].num_rows == n > 0
        tensors = load_tensors(name, RATIO, split, path=first.path, use_cache=False)
        assert len(tensors) == n and tensors.images.dtype.is_floating_point is False
        assert int(tensors.labels.max()) < len(gen.schema.label_names)
        assert int(tensors.bias.max()) < len(gen.schema.bias_names)
    train = load_tensors(name, RATIO, "train", path=first.path, use_cache=False)
    conflicting = float((~train.aligned).float().mean())
    assert 0 < conflicting < 0.2, f"train conflicting share {conflicting:.3f} for a 5 % config"

    for fmt in ("disent", "lff"):
        report = export(folder, folder.configs(), fmt, tmp_path / fmt)
        assert sum(report.written.values()) >= int(config.splits["train"]["num_examples"]), (fmt, report.written)

    assert gen.name == name and gen.card_meta and gen.export_layout and isinstance(gen.fits_cpu, bool)
