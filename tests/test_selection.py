"""Model selection at read time: the rules re-make the trainer's choices from the history, and add new ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from biasbench.baselines import get as get_method
from biasbench.errors import UserError
from biasbench.results import selection
from biasbench.training.trainer import train
from helpers import tiny_cfg, tiny_data

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboard" / "runs" / "cmnist-cpu" / "runs"


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed cmnist-cpu records")
def test_the_rules_choose_what_the_trainer_stored_in_every_committed_record():
    records = [json.loads(p.read_text()) for p in sorted(COMMITTED.glob("*.json"))]
    assert len(records) >= 100
    for r in records:
        for rule, slot in (("valid", "best_valid"), ("oracle", "best_test_oracle"), ("final", "final")):
            assert selection.choose(r, rule) == r[slot], (r["run_id"], rule)
    mrm = [r for r in records if r["method"] == "mrm"]
    assert mrm and all(selection.choose(r, "valid")["step"] > 2 * r["config"]["steps"] for r in mrm)


@pytest.mark.slow
def test_a_shorter_budget_is_read_from_a_longer_run_where_nothing_depends_on_its_length(tmp_path):
    data = tiny_data()
    short = train(tiny_cfg(steps=8)[0], data, get_method("erm"), torch.device("cpu"), tmp_path / "a.pt")
    long = train(tiny_cfg(steps=16)[0], data, get_method("erm"), torch.device("cpu"), tmp_path / "b.pt")
    record = {"method": "erm", "history": long["history"],
              "config": {"protocol": {"selection_metric": "unbiased", "headline": "unbiased"}}}
    assert long["history"][:2] == short["history"]  # ERM, no schedule: the first 8 steps are the same run
    assert selection.choose(record, "valid@8") == short["best_valid"]
    assert selection.choose(record, "valid") == long["best_valid"]


def test_mean_of_the_last_evaluations_and_unknown_rules():
    def entry(step, v):
        return {"step": step, "valid": {"unbiased": v, "groups": {}}, "test": {"unbiased": v / 2}}

    record = {"method": "erm", "history": [entry(1, 0.1), entry(2, 0.4), entry(3, 0.5), entry(4, 0.6)],
              "config": {"protocol": {"selection_metric": "unbiased", "headline": "unbiased"}}}
    last = selection.choose(record, "last3")
    assert last["step"] == 4 and last["valid"]["unbiased"] == pytest.approx(0.5)
    assert last["test"]["unbiased"] == pytest.approx(0.25) and "groups" not in last["valid"]
    assert selection.choose(record, "valid@2")["step"] == 2
    for bad in ("best", "valid@0", "valid@x"):
        with pytest.raises(UserError, match="unknown selection"):
            selection.get(bad)


@pytest.mark.parametrize("method", ["jtt", "mrm"])
def test_a_methods_earlier_stages_are_never_chosen_at_read_time(method):
    """JTT's identification model and MRM's stages 1-2 are evaluated but not selectable, from the config alone."""
    steps = 10
    params = {"identify_fraction": 0.2} if method == "jtt" else {"stage_lengths": [1.0, 1.0]}
    first = 2 if method == "jtt" else 20  # the last step of the earlier stages

    def entry(step, v):
        return {"step": step, "valid": {"unbiased": v}, "test": {"unbiased": v}}

    history = [entry(s, 0.9 if s <= first else 0.5 + s / 100) for s in range(1, first + steps + 1)]
    record = {"method": method, "history": history, "config": {
        "steps": steps, "method_params": params, "protocol": {"selection_metric": "unbiased", "headline": "unbiased"}}}
    for rule in ("valid", "oracle", "last3"):
        assert selection.choose(record, rule)["step"] > first, rule
    assert selection.choose(record, "valid")["step"] == first + steps
