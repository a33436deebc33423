"""GroupDRO and JTT on the common trainer: each as its reference computes it, deterministic, resumable."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
import torch
import torch.nn.functional as F

from biasbench.baselines import configure, get as get_method
from biasbench.baselines.base import Batch, TrainInfo
from biasbench.training.models import create
from biasbench.training.method import selectable_entries
from biasbench.training.trainer import train
from helpers import tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg_for(method: str, steps: int = 10, eval_every: int = 2):
    cls = get_method(method)
    cfg = configure(method, "cmnist", Decimal("0.01"), 41, "cpu", 1024, steps=steps, eval_every=eval_every)
    return cfg, cls


def test_groupdro_updates_group_weights_as_the_reference_and_weights_the_group_losses():
    cfg, cls = cfg_for("groupdro")
    assert cfg.method_params() == {"step_size": 0.01, "adjustment": 0.0, "group_balanced": True}
    assert cls.uses_bias_labels
    data = tiny_data()
    info = TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels, data.train.bias)
    torch.manual_seed(0)
    model = create("simple_cnn", 2).eval()
    method = cls(model, cfg, info)
    n = 64
    x = data.train.images[:n].float() / 255
    y, b = data.train.labels[:n], data.train.bias[:n]
    loss = method.loss(Batch(x, y, b, data.train.aligned[:n], torch.arange(n)))
    per = F.cross_entropy(model(x), y, reduction="none").detach()
    groups = y * 2 + b
    group_loss = torch.stack([per[groups == g].mean() if (groups == g).any() else torch.tensor(0.0)
                              for g in range(4)])
    q = torch.full((4,), 0.25) * torch.exp(0.01 * group_loss)
    q = q / q.sum()
    assert torch.allclose(method.q, q, atol=1e-6)
    assert float(loss.detach()) == pytest.approx(float(group_loss @ q), rel=1e-5)
    absent = [g for g in range(4) if not (groups == g).any()]
    assert all(abs(float(method.q[g]) - float(q[g])) < 1e-6 for g in absent)  # exp(0): only renormalised


def test_groupdro_needs_the_bias_labels():
    cfg, cls = cfg_for("groupdro")
    data = tiny_data()
    with pytest.raises(ValueError, match="bias labels"):
        cls(create("simple_cnn", 2), cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))


def test_groupdro_draws_group_balanced_batches_as_the_references_reweight_groups():
    """kohpangwei/group_DRO data/dro_dataset.py: WeightedRandomSampler(len / group_counts[g], replacement=True)."""
    from biasbench.training.batches import IndexStream

    cfg, cls = cfg_for("groupdro")
    data = tiny_data()
    info = TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels, data.train.bias)
    method = cls(create("simple_cnn", 2), cfg, info)
    groups = data.train.labels * 2 + data.train.bias
    counts = torch.bincount(groups, minlength=4).double()
    w = method.sample_weights()
    assert w is not None and torch.allclose(w, 1024 / counts[groups])
    assert int(counts.min()) < 20  # the conflicting groups are rare (2 %) ...
    stream = IndexStream(1024, 256, seed=3, weights=w)
    drawn = groups[torch.cat([stream.next() for _ in range(40)])]
    share = torch.bincount(drawn, minlength=4).double() / len(drawn)
    assert torch.allclose(share, torch.full((4,), 0.25, dtype=torch.float64), atol=0.02)  # ... and drawn as often


def test_groupdro_uniform_draws_stay_a_named_option():
    cfg, cls = cfg_for("groupdro")
    cfg = dataclasses.replace(cfg, params=dataclasses.replace(cfg.params, group_balanced=False))
    data = tiny_data()
    info = TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels, data.train.bias)
    assert cls(create("simple_cnn", 2), cfg, info).sample_weights() is None


class RecordingJTT(get_method("jtt")):
    last: "RecordingJTT"

    def __init__(self, model, cfg, info):
        super().__init__(model, cfg, info)
        self.w0 = {k: v.clone() for k, v in model.state_dict().items()}
        self.pass_pred = torch.full((info.n,), -1)  # each sample's latest train-mode, pre-update prediction
        self.modes = set()
        RecordingJTT.last = self

    def loss(self, batch):
        if self.error is None:
            self.modes.add(self.model.training)
            with torch.no_grad():
                self.pass_pred[batch.index] = self.model(batch.x).argmax(1)
        return super().loss(batch)

    def end_stage(self, stage, optimizer):
        assert stage.name == "identify" and self.done == self.identify_steps
        self.stage1_pred = self.train.predict(self.model)
        super().end_stage(stage, optimizer)
        self.start2 = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.fresh = all(p not in optimizer.state for p in self.model.parameters())


def test_jtt_upweights_what_its_first_model_gets_wrong_and_retrains_from_w0(tmp_path):
    cfg, _ = cfg_for("jtt", steps=10)
    params = cfg.method_params()
    assert params == {"identify_fraction": 0.2, "upweight": 100.0, "error_set": "train_pass", "copies": "plus_one"}
    assert not get_method("jtt").uses_bias_labels
    result = train(cfg, tiny_data(), RecordingJTT, torch.device("cpu"), tmp_path / "j.pt")
    m = RecordingJTT.last
    # T = 20 % of 10 steps = 2, raised to one epoch (1024 / 256 = 4 steps) so that the pass sees every sample
    assert m.identify_steps == 4 and result["steps_trained"] == 14
    data = tiny_data()
    # the error set is the training pass's (train mode, before each update: anniesch/jtt train.py run_epoch),
    # not an eval-mode prediction after step T
    assert m.modes == {True} and bool((m.pass_pred >= 0).all())
    assert torch.equal(m.error, m.pass_pred != data.train.labels) and m.error.any()
    assert not torch.equal(m.error, m.stage1_pred != data.train.labels)
    assert all(torch.equal(m.start2[k], m.w0[k]) for k in m.w0) and m.fresh
    w = m.sample_weights()  # original + lambda_up copies (run_expt.py ConcatDataset)
    assert set(w[m.error].tolist()) == {101.0} and set(w[~m.error].tolist()) == {1.0}
    assert result["jtt"] == {"identify_steps": 4, "error_set": int(m.error.sum()), "weight": 101.0}
    assert min(h["step"] for h in result["history"]) == 2
    assert result["best_valid"]["step"] > 4 and result["best_test_oracle"]["step"] > 4  # stage-2 models only
    # read back from the record: the trainer's flags (T depends on the train size, not in the config)
    kept = selectable_entries(get_method("jtt"), {"config": cfg.to_dict(), "history": result["history"]})
    assert [h["step"] for h in kept] == [h["step"] for h in result["history"] if h["step"] > 4]
    assert get_method("jtt").plan_stages(10, params, None, 256) is None


def test_jtt_draws_the_error_set_lambda_times_as_often():
    from biasbench.training.batches import IndexStream

    error = torch.zeros(1000, dtype=torch.bool)
    error[:10] = True
    stream = IndexStream(1000, 500, seed=3)
    stream.set_weights(torch.where(error, 100.0, 1.0), new_epoch=True)
    drawn = torch.cat([stream.next() for _ in range(40)])
    share = float(error[drawn].float().mean())
    assert share == pytest.approx(1000 / 1990, abs=0.03)  # 10 x 100 of 990 + 10 x 100


@pytest.mark.slow
@pytest.mark.parametrize("method,stop_at", [("jtt", 2), ("jtt", 6)])
def test_jtt_resumes_exactly_across_its_stage_boundary(method, stop_at, tmp_path):
    cfg, cls = cfg_for(method, steps=8)
    straight = train(cfg, tiny_data(), cls, torch.device("cpu"), tmp_path / "a.pt")

    class Stop(Exception):
        pass

    class StopAt(cls):
        def on_evaluate(self, step, entry):
            if step == stop_at + 2:
                raise Stop

    ckpt = tmp_path / "b.pt"
    with pytest.raises(Stop):
        train(cfg, tiny_data(), StopAt, torch.device("cpu"), ckpt)
    resumed = train(cfg, tiny_data(), cls, torch.device("cpu"), ckpt)
    assert resumed["history"] == straight["history"]


def test_jtts_t_is_the_profiles_validation_choice_where_one_was_made_and_the_untuned_share_elsewhere(monkeypatch):
    from decimal import Decimal

    from biasbench.baselines import configure, jtt

    def cfg(profile):
        return configure("jtt", "cmnist", Decimal("0.01"), 41, profile, 54000)

    before = {p: cfg(p).run_id("f" * 64) for p in ("cpu", "disent")}
    assert cfg("disent").method_params()["identify_fraction"] == jtt.JTTParams().identify_fraction
    monkeypatch.setitem(jtt.CHOSEN_IDENTIFY_FRACTION, ("disent", "digits"), 0.01)
    assert cfg("disent").method_params()["identify_fraction"] == 0.01
    assert cfg("disent").run_id("f" * 64) != before["disent"]  # another T is another run
    assert cfg("cpu").run_id("f" * 64) == before["cpu"]  # other profiles keep theirs
    assert cfg("disent").variant() == ""  # the profile's own number, not a user's --set
