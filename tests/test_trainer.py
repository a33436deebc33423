"""The trainer: learns, is deterministic, resumes exactly after kill -9, loads checkpoints safely."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from biasbench.baselines import get as get_method
from biasbench.errors import UserError
from biasbench.training import checkpoint
from biasbench.training.trainer import train
from conftest import REPO, cli
from helpers import contract_data, method_on_a_batch, small_batches, tiny_cfg, tiny_data


def test_erm_learns_the_colour_shortcut(tmp_path):
    cfg, cls = tiny_cfg("erm", steps=10)
    result = train(cfg, tiny_data(), cls, torch.device("cpu"), tmp_path / "a.pt")
    final = result["final"]["test"]
    assert final["aligned"] >= 0.95 and final["conflicting"] <= 0.5  # it reads the colour
    assert [h["step"] for h in result["history"]] == [4, 8, 10]


def test_reweighted_erm_weights_the_loss_or_the_sampler_as_the_protocol_says():
    import dataclasses

    import torch.nn.functional as F

    cfg, cls = tiny_cfg("reweighted_erm")
    assert cfg.beta == 30.0  # 1pct
    model, method, batch = method_on_a_batch(cfg, cls, 64)
    data = tiny_data()
    info = method.train
    per = F.cross_entropy(model(batch.x), batch.y, reduction="none")
    w = torch.where(batch.aligned, 1.0, 30.0)
    assert method.sample_weights() is None
    assert float(method.loss(batch).detach()) == pytest.approx(float((w * per).mean().detach()), rel=1e-5)
    resample = cls(model, dataclasses.replace(cfg, protocol=dataclasses.replace(cfg.protocol, reweight="resample")), info)
    weights = resample.sample_weights()
    assert set(weights[data.train.aligned].tolist()) == {1.0} and set(weights[~data.train.aligned].tolist()) == {30.0}
    assert float(resample.loss(batch).detach()) == pytest.approx(float(per.mean().detach()), rel=1e-5)


def test_best_valid_and_oracle_selections_point_at_history_entries(tmp_path):
    cfg = small_batches(tiny_cfg("erm")[0])
    result = train(cfg, contract_data(), get_method("erm"), torch.device("cpu"), tmp_path / "c.pt")
    history = result["history"]
    assert result["best_valid"] == max(history, key=lambda h: h["valid"]["unbiased"])
    assert result["best_test_oracle"]["test"]["unbiased"] == max(h["test"]["unbiased"] for h in history)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_crafted_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state": Evil()}))
    with pytest.raises(UserError, match="--restart"):
        checkpoint.load(path)
    assert not marker.exists()


# ---- through the CLI, in real processes -----------------------------------------------------

@pytest.fixture(scope="module")
def data_root(cmnist_root):
    return cmnist_root  # conftest: one shared build


RUN = ["run", "--method", "reweighted_erm", "--ratio", "1pct", "--seeds", "1", "--steps", "6", "--eval-every", "2"]

KILL_AFTER_SECOND_CHECKPOINT = textwrap.dedent(
    """
    import os, signal, sys
    from biasbench.training import checkpoint
    original, calls = checkpoint.save, [0]
    def save(*a, **k):
        original(*a, **k)
        calls[0] += 1
        if calls[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    checkpoint.save = save
    from biasbench.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def only_record(results) -> dict:
    (path,) = (results / "runs").glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_metrics(data_root, tmp_path):
    common = [*RUN, "--data-dir", str(data_root), "--device", "cpu"]
    straight = cli(*common, "--results", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SECOND_CHECKPOINT, *common, "--results", str(tmp_path / "b")],
                            cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -9
    assert not list((tmp_path / "b" / "runs").glob("*.json"))
    assert len(list((tmp_path / "b" / "checkpoints").glob("*.pt"))) == 1
    resumed = cli(*common, "--results", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "from step 4" in resumed.stdout
    a, b = only_record(tmp_path / "a"), only_record(tmp_path / "b")
    assert a["run_id"] == b["run_id"]
    assert a["history"] == b["history"] and a["final"] == b["final"]
    assert not list((tmp_path / "b" / "checkpoints").glob("*.pt"))  # removed once the record exists


@pytest.mark.slow
def test_corrupt_checkpoint_is_one_line_and_restart_starts_over(data_root, tmp_path):
    common = [*RUN, "--data-dir", str(data_root), "--device", "cpu", "--results", str(tmp_path)]
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SECOND_CHECKPOINT, *common], cwd=REPO, capture_output=True)
    assert killed.returncode == -9
    (ckpt,) = (tmp_path / "checkpoints").glob("*.pt")
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    broken = cli(*common)
    assert broken.returncode == 2 and broken.stderr.count("\n") == 1 and "--restart" in broken.stderr
    again = cli(*common, "--restart")
    assert again.returncode == 0, again.stderr
    assert only_record(tmp_path)["final"]["step"] == 6


def test_method_hooks_are_called_around_each_step_and_at_each_evaluation(tmp_path):
    erm = get_method("erm")
    calls = []

    class Recorder(erm):
        def before_step(self, step, optimizer):
            assert all(p.grad is not None for p in self.model.parameters())  # after backward
            calls.append(("before", step))

        def after_step(self, step, optimizer):
            calls.append(("after", step))

        def on_evaluate(self, step, entry):
            assert entry["step"] == step and "unbiased" in entry["valid"]
            calls.append(("eval", step))

    cfg, _ = tiny_cfg("erm", steps=5)
    train(small_batches(cfg), contract_data(), Recorder, torch.device("cpu"), tmp_path / "h.pt")
    expected = []
    for step in range(1, 6):
        expected += [("before", step), ("after", step)] + ([("eval", step)] if step in (4, 5) else [])
    assert calls == expected


def test_declared_stages_are_run_in_order_ended_once_and_only_selectable_ones_selected(tmp_path):
    from biasbench.baselines.base import Stage
    from biasbench.results.selection import history

    erm = get_method("erm")
    calls = []

    class TwoStages(erm):
        @classmethod
        def plan_stages(cls, steps, params, n_train, batch_size):
            return (Stage("warmup", 4, selectable=False), Stage("main", steps, redraw=True))

        def after_step(self, step, optimizer):
            calls.append(("after", step))

        def end_stage(self, stage, optimizer):
            calls.append(("end", stage.name))

    cfg = small_batches(tiny_cfg("erm", steps=5)[0])
    result = train(cfg, contract_data(), TwoStages, torch.device("cpu"), tmp_path / "s.pt")
    assert result["steps_trained"] == 9 and calls.count(("end", "warmup")) == 1
    assert calls.index(("end", "warmup")) == calls.index(("after", 4)) + 1  # after the stage's last step
    assert [h["step"] for h in result["history"]] == [4, 8, 9]  # evaluations every 4 steps and at the end
    assert result["history"][0]["selectable"] is False  # step 4 ends the warmup: never selected
    assert result["best_valid"]["step"] in (8, 9) and result["best_test_oracle"]["step"] in (8, 9)
    record = {"method": "erm", "config": cfg.to_dict(), "history": result["history"]}
    assert [h["step"] for h in history(record)] == [8, 9]  # read back: the trainer's flags
    mrm_like = {"method": "mrm", "config": dict(cfg.to_dict(), method_params={"stage_lengths": [1.0, 1.0]}),
                "history": [{"step": s} for s in (4, 5, 10, 11, 15)]}  # an unflagged record: the config's stages
    assert [h["step"] for h in history(mrm_like)] == [11, 15]
