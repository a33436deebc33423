"""What CONTRIBUTING.md says adding a method or a dataset takes is what it takes: one module each and one
registry line each, nothing else edited. A toy method and a toy dataset, written as files into a temporary
folder, go through `biasbench run`, the leaderboard and both contracts."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from biasbench.datasets import DATASETS, DIGITS, DatasetInfo
from biasbench.generators.build import generate
from biasbench.methods import METHODS, Display
from helpers import assert_keeps_the_formats_contract, assert_keeps_the_trainers_contract, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The whole of each contribution: a module (here in a temporary folder on sys.path)...
TOY_METHOD = '''"""Focal loss (Lin et al. 2017): ERM that down-weights examples the model already gets right."""

import torch.nn.functional as F

from biasbench.baselines.base import Method


class Focal(Method):
    length_free = True  # no schedule

    def loss(self, batch):
        ce = F.cross_entropy(self.model(batch.x), batch.y, reduction="none")
        return ((1 - (-ce).exp()) ** 2 * ce).mean()


METHOD = Focal
'''
TOY_DATASET = '''"""Colored MNIST whose digit d wears colour d + 1: another digits dataset, CMNIST's construction."""

from dataclasses import replace

from biasbench.generators.cmnist import ColoredMNIST
from biasbench.protocol import CMNIST


class ShiftedColours(ColoredMNIST):
    name = "toy_digits"


GENERATOR = ShiftedColours(replace(CMNIST, colours=CMNIST.colours[1:] + CMNIST.colours[:1]))
'''


@pytest.fixture
def contributed(tmp_path, monkeypatch):
    """...and its registry line (the lines biasbench/methods.py and biasbench/datasets.py would get)."""
    (tmp_path / "toy_focal.py").write_text(TOY_METHOD)
    (tmp_path / "toy_digits.py").write_text(TOY_DATASET)
    monkeypatch.syspath_prepend(str(tmp_path))
    METHODS.add("toy_focal", "toy_focal:METHOD", Display("focal", "tab:gray"))
    DATASETS.add("toy_digits", "toy_digits:GENERATOR", DatasetInfo(DIGITS, 28, 3))
    yield
    METHODS.remove("toy_focal")
    DATASETS.remove("toy_digits")


def test_a_toy_method_and_a_toy_dataset_run_and_reach_the_leaderboard(contributed, fixture_mnist, tmp_path, capsys):
    root, results = tmp_path / "data", tmp_path / "results"
    generate("toy_digits", [Decimal("0.05")], root, 0, fixture_mnist, allow_unverified=True)
    for method in ("toy_focal", "erm"):
        code, _, err = run(capsys, "run", "--method", method, "--dataset", "toy_digits", "--ratio", "5pct", "--seeds",
                           "1", "--steps", "4", "--eval-every", "2", "--device", "cpu", "--data-dir", str(root),
                           "--results", str(results))
        assert code == 0, err
    records = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    assert sorted((r["method"], r["dataset"]) for r in records) == [("erm", "toy_digits"), ("toy_focal", "toy_digits")]
    assert all(r["config"]["protocol"]["model"] == "simple_cnn" for r in records)  # the digits family's profile
    assert run(capsys, "leaderboard", "--results", str(results), "--out", str(tmp_path / "lb"))[0] == 0
    table = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    assert set(table["method"]) == {"erm", "toy_focal"} and set(table["dataset"]) == {"toy_digits"}


def test_a_toy_method_keeps_the_trainers_contract(contributed, tmp_path):
    assert_keeps_the_trainers_contract("toy_focal", tmp_path)


def test_a_toy_dataset_keeps_the_formats_contract(contributed, fixture_mnist, tmp_path):
    assert_keeps_the_formats_contract("toy_digits", fixture_mnist, tmp_path)
