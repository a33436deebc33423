"""Every registered method keeps the trainer's contract: same seed same history, another seed another,
exact resume from a mid-run checkpoint, a result the read-time selection re-makes, its registry entry complete.

A new method is checked here by its registry line alone (README: adding a method)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
import torch

from biasbench import baselines, methods
from biasbench.results import selection
from biasbench.training.trainer import train
from helpers import tiny_data

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # ~40 s for all methods
# Step counts a method's own numbers give for long runs, shortened so that a few steps cover every phase.
SHORTEN = {"disent": {"curr_step": 2, "lr_decay_step": 3}}


def contract_cfg(method: str, seed: int = 41):
    cfg = baselines.configure(method, "cmnist", Decimal("0.01"), seed, "cpu", 1024, steps=6, eval_every=2)
    if method in SHORTEN:
        cfg = dataclasses.replace(cfg, params=dataclasses.replace(cfg.params, **SHORTEN[method]))
    return dataclasses.replace(cfg, protocol=dataclasses.replace(cfg.protocol, batch_size=64))


class Stop(Exception):
    pass


@pytest.mark.parametrize("method", baselines.names())
def test_every_method_keeps_the_trainers_contract(method, tmp_path):
    cls, data, cpu = baselines.get(method), tiny_data(), torch.device("cpu")
    cfg = contract_cfg(method)
    first = train(cfg, data, cls, cpu, tmp_path / "a.pt")
    other = train(contract_cfg(method, seed=42), data, cls, cpu, tmp_path / "c.pt")
    assert first["history"] != other["history"], "another seed, the same history"
    assert first["steps_trained"] == first["history"][-1]["step"] and first["accounting"]["train_flops"] > 0

    class StopAtTheSecondEvaluation(cls):
        evaluations = 0

        def on_evaluate(self, step, entry):
            super().on_evaluate(step, entry)
            type(self).evaluations += 1
            if type(self).evaluations == 2:
                raise Stop

    with pytest.raises(Stop):
        train(cfg, data, StopAtTheSecondEvaluation, cpu, tmp_path / "d.pt")
    resumed = train(cfg, data, cls, cpu, tmp_path / "d.pt")
    # an independent run of the same seed, stopped and resumed: the same history proves both determinism and resume
    assert resumed["history"] == first["history"], "same seed, stopped and resumed: another history"

    record = {"method": method, "history": first["history"], "config": cfg.to_dict()}
    assert selection.choose(record, "valid") == first["best_valid"]
    assert selection.choose(record, "oracle") == first["best_test_oracle"]
    assert isinstance(cls.uses_bias_labels, bool) and methods.display(method).name
