"""The `disent` profile: DisEnt's released CMNIST settings, and the run ids it must not move elsewhere."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import torch

from biasbench.baselines import configure, get as get_method
from biasbench.protocol import DISENT_REFERENCE_STEPS, FULL_BUDGET_PROFILES, protocol_for
from biasbench.ratios import ratio_from_config
from biasbench.runconfig import default_density
from biasbench.training.batches import Preprocess
from biasbench.training.models import count_params, create

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboard" / "runs" / "cmnist-cpu" / "runs"


def _config(method: str, ratio: str = "1pct", profile: str = "disent", dataset: str = "cmnist", **kw):
    return configure(method, dataset, ratio_from_config(ratio), 41, profile, 55_000, **kw)


def test_disent_mlp_is_disents_own_100_100_16():
    model = create("mlp_disent", 10, 3, 28, 64)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2352, 100), (100, 100), (100, 16), (16, 10)]
    assert count_params(model) == 2352 * 100 + 100 + 100 * 100 + 100 + 100 * 16 + 16 + 16 * 10 + 10
    assert model.features(torch.zeros(2, 3, 28, 28)).shape == (2, 16)
    # LfF's stays 3 x 100
    assert create("mlp", 10, 3, 28, 64).fc.in_features == 100


def test_disent_profile_has_disents_numbers():
    p = protocol_for("disent", "cmnist")
    assert (p.model, p.optimizer, p.lr, p.weight_decay, p.batch_size) == ("mlp_disent", "adam", 0.01, 0.0, 256)
    assert (p.steps, p.epochs, p.eval_every, p.input_divisor) == (50_000, None, 500, 255.0)
    assert p.augment == () and p.normalize is None and p.schedule == "none"
    d = _config("disent").params
    assert (d.curr_step, d.lr_decay_step, d.lr_gamma, d.lambda_swap) == (10_000, 10_000, 0.5, 1.0)
    assert set(d.lambda_dis_align.values()) == {10.0}
    assert DISENT_REFERENCE_STEPS == 50_000 and "disent" in FULL_BUDGET_PROFILES and "cpu" not in FULL_BUDGET_PROFILES
    b = protocol_for("disent", "bffhq")
    assert (b.batch_size, b.image_size, b.lr, b.augment) == (64, 224, 1e-4, ("crop4", "flip"))
    assert _config("disent", dataset="bffhq").params.lr_gamma == 0.1  # its script passes no --lr_gamma: the default


def test_disents_cifar_lr_is_its_own_per_ratio_and_others_keep_the_profiles():
    half, one = _config("disent", "0.5pct", dataset="cifar10c"), _config("disent", "1pct", dataset="cifar10c")
    assert (half.method_params()["lr"], one.method_params()["lr"]) == (0.0005, 0.001)
    assert "lr" not in _config("disent", "1pct", profile="cpu").method_params()  # not set: not recorded


def test_the_mlp_input_is_divided_by_255_twice_as_the_references_do():
    images = torch.tensor([[[[0, 128], [255, 7]]]], dtype=torch.uint8).expand(1, 3, 2, 2)
    twice = Preprocess(2, (), None, seed=0, device=torch.device("cpu"), input_divisor=255.0)(images, train=False)
    reference = (images.float() / 255) / 255  # ToTensor, then module/mlp.py's `x / 255`
    assert torch.equal(twice, reference)
    assert float(twice.max()) == pytest.approx(1 / 255)


def test_input_divisor_enters_the_run_id_only_when_set():
    cpu = _config("erm", profile="cpu").to_dict()
    disent = _config("erm").to_dict()
    assert "input_divisor" not in cpu["protocol"]
    assert disent["protocol"]["input_divisor"] == 255.0


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed cmnist-cpu records")
def test_the_committed_records_keep_their_run_ids():
    """A record's run id is re-derived from today's profile: new protocol fields did not move them."""
    checked = 0
    for path in sorted(COMMITTED.glob("*.json"))[::7]:
        r = json.loads(path.read_text())
        c = r["config"]
        cls = get_method(r["method"])
        density = c["overrides"].get("density")
        if c["density"] is not None and cls.default_density and (density is None) != (
                c["density"] == default_density("cpu", "cmnist", r["method"], r["ratio"])):
            continue  # made before the default density moved (to or from its density): read as a variant
        # the record's own overrides (density, a budget-curve run's steps) re-applied
        cfg = configure(r["method"], "cmnist", ratio_from_config(r["ratio"]), r["seed"], "cpu", 55_000,
                        **c["overrides"])
        if c.get("method_params") != cfg.to_dict().get("method_params"):
            continue  # the method's own numbers were revised since (issue 25: mrm, groupdro, jtt): a new run id
        assert cfg.run_id(r["data"]["fingerprint"]) == r["run_id"], path.name
        checked += 1
    assert checked >= 10
    assert Decimal("0.01") == ratio_from_config("1pct")
