"""Every registered dataset keeps the format's contract, end to end on a small fixture source: it generates
deterministically, verifies, loads with `datasets.load_dataset` and as tensors, and exports in both references'
layouts; its registry entry is complete.

A new dataset is checked here by its registry line plus one fixture source below (CONTRIBUTING.md: adding a dataset)."""

from __future__ import annotations

import pytest

from biasbench import generators
from helpers import assert_keeps_the_formats_contract


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
    assert_keeps_the_formats_contract(name, SOURCES[name](request, tmp_path_factory, monkeypatch), tmp_path)
