"""A dataset trains as its family does: the profile and the methods' per-dataset numbers come from the family
in its registry line, and a method without numbers for a family says so in one line (exit 2), never a KeyError."""

from __future__ import annotations

from decimal import Decimal

import pytest

from biasbench.baselines import configure
from biasbench.datasets import DATASETS, DIGITS, FACES, NATURAL, DatasetInfo
from biasbench.protocol import PROFILES, protocol_for
from helpers import assert_one_line_error, run


@pytest.fixture
def registered():
    """Register datasets for one test (a registry line each), removed afterwards."""
    added = []

    def add(name: str, family: str) -> str:
        from biasbench.generators.cmnist import ColoredMNIST

        generator = type("Renamed", (ColoredMNIST,), {"name": name})()  # CMNIST's construction under a new name
        DATASETS.add(name, generator, DatasetInfo(family, 28, 3))
        added.append(name)
        return name

    yield add
    for name in added:
        DATASETS.remove(name)


@pytest.mark.parametrize("family,reference", [(DIGITS, "cmnist"), (NATURAL, "cifar10c"), (FACES, "bffhq")])
def test_a_new_dataset_gets_its_familys_profile_and_method_numbers(registered, family, reference):
    name = registered(f"other_{family}", family)
    for profile in PROFILES:
        assert protocol_for(profile, name) is protocol_for(profile, reference)
        for method in ("disent", "mrm", "erm"):
            mine = configure(method, name, Decimal("0.01"), 41, profile, 20_000).to_dict()
            theirs = configure(method, reference, Decimal("0.01"), 41, profile, 20_000).to_dict()
            assert mine == {**theirs, "dataset": name}, (profile, method)


def test_mrm_mask_lr_and_disent_lambdas_follow_the_family(registered):
    digits, faces = registered("other_digits", DIGITS), registered("other_faces", FACES)
    def mrm(dataset, profile):
        params = configure("mrm", dataset, Decimal("0.01"), 41, profile, 1000).method_params()
        return params["mask_lr"], params["alpha"]

    assert mrm(digits, "paper") == (1e-2, 1e-4) and mrm(faces, "paper") == (1e-3, 3e-4)
    assert mrm(digits, "cpu") == (1e-2, 1e-4) and mrm(faces, "cpu") == (1e-2, 3e-4)  # cpu's short probes: lr 1e-2
    disent = configure("disent", faces, Decimal("0.01"), 41, "cpu", 1000).method_params()
    assert (disent["lambda_dis_align"], disent["lambda_swap"], disent["lr_gamma"]) == (2.0, 0.1, 0.1)


def test_a_family_without_a_profile_or_method_numbers_is_one_line_exit_2(registered, monkeypatch, capsys, tmp_path):
    name = registered("sketches", "sketch")
    args = ["run", "--dataset", name, "--steps", "2", "--device", "cpu", "--data-dir", str(tmp_path),
            "--results", str(tmp_path / "r")]
    code, _, err = run(capsys, *args, "--method", "erm")
    assert_one_line_error(code, err, "no protocol for dataset 'sketches'", "family 'sketch'")
    monkeypatch.setitem(PROFILES["cpu"], "sketch", PROFILES["cpu"][DIGITS])  # a profile for it, but not DisEnt's
    code, _, err = run(capsys, *args, "--method", "disent")
    assert_one_line_error(code, err, "disent has no lambdas for dataset family 'sketch'")
    assert not list(tmp_path.glob("sketches*")), "nothing generated before the error"
