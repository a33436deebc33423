"""MRM: the probe freezes the model, the mask reaches the target density, the subnetwork restarts
from w0 and trains only its masked weights, runs are deterministic and resume mid-stage exactly."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
import torch

from biasbench.baselines.mrm import MRM, hard_gumbel_sigmoid, stage_ends, top_share
from biasbench.errors import UserError
from biasbench.runconfig import resolve
from biasbench.training.trainer import train
from test_trainer import tiny_data

STEPS, EVERY, BATCH = 12, 2, 32  # stages: steps 1-4, 5-8, 9-12; evaluations every 2 steps


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mrm_cfg(density: float | None = None):
    """The cpu profile's MRM at 1 % with a tiny budget and small batches."""
    cfg = resolve("mrm", "cmnist", Decimal("0.01"), 41, "cpu", 1024, False, True, steps=STEPS, eval_every=EVERY,
                  density=density)
    return dataclasses.replace(cfg, protocol=dataclasses.replace(cfg.protocol, batch_size=BATCH)), MRM


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Recorded(MRM):
    """MRM that records the model around its stage switches (behaviour unchanged)."""

    last: "Recorded"

    def __init__(self, model, cfg, train_info):
        super().__init__(model, cfg, train_info)
        self.rec: dict = {"w0": snapshot(model), "stage3_outside_zero": []}
        Recorded.last = self

    def after_step(self, step, optimizer):
        super().after_step(step, optimizer)
        if step == self.ends[0]:
            self.rec["end1"] = snapshot(self.model)
            self.rec["logits1"] = [t.detach().clone() for t in self.logits]
        if step > self.ends[1]:
            self.rec["stage3_outside_zero"].append(all(
                torch.count_nonzero(m.weight[~mask]) == 0 for (_, m), mask in zip(self.engine.layers, self.engine.masks)))

    def _start_subnetwork(self, optimizer):
        self.rec["end2"] = snapshot(self.model)
        self.rec["logits2"] = [t.detach().clone() for t in self.logits]
        super()._start_subnetwork(optimizer)
        self.rec["start3"] = snapshot(self.model)
        self.rec["masks"] = [m.clone() for m in self.engine.masks]
        self.rec["fresh_optimizer"] = all(p not in optimizer.state for p in self.model.parameters())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    cfg, _ = mrm_cfg()
    result = train(cfg, tiny_data(), Recorded, torch.device("cpu"), tmp_path_factory.mktemp("mrm") / "a.pt")
    return cfg, result, Recorded.last


def test_stage_ends_split_the_budget_in_thirds_and_need_a_step_each():
    assert stage_ends(12, (1 / 3, 1 / 3, 1 / 3)) == (4, 8)
    assert stage_ends(600, (1 / 3, 1 / 3, 1 / 3)) == (200, 400)
    assert stage_ends(3, (0.9, 0.05, 0.05)) == (1, 2)
    with pytest.raises(UserError):
        stage_ends(2, (1, 1, 1))


def test_hard_gumbel_sigmoid_is_binary_seeded_and_passes_the_soft_gradient():
    logits = torch.tensor([-30.0, 0.0, 0.5, 30.0], requires_grad=True)
    a = hard_gumbel_sigmoid(logits, 1.0, torch.Generator().manual_seed(5))
    b = hard_gumbel_sigmoid(logits, 1.0, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and set(a.tolist()) <= {0.0, 1.0}
    assert a[0] == 0 and a[3] == 1
    a.sum().backward()
    assert logits.grad[1] > 0 and logits.grad[0] < 1e-9  # the soft sample's sigmoid slope


def test_top_share_global_keeps_the_largest_logits_over_all_layers():
    logits = [torch.tensor([3.0, -1.0]), torch.tensor([[0.5, 2.0], [-2.0, 1.0]])]
    keep = top_share(logits, 0.5, "global")  # 3 of 6: 3.0, 2.0, 1.0
    assert keep[0].tolist() == [True, False] and keep[1].tolist() == [[False, True], [False, True]]


def test_top_share_erk_keeps_each_layers_erk_count_so_no_layer_is_emptied():
    from biasbench.training.models import create
    from biasbench.training.sparse import SparseEngine, SparseSettings, prunable_layers

    model = create("simple_cnn", 10)
    shapes = [m.weight.shape for _, m in prunable_layers(model)]
    # the third conv's logits are all below every other layer's: a global top-k at 0.005 keeps none of them
    logits = [torch.rand(s, generator=torch.Generator().manual_seed(i)) + (0.0 if i == 2 else 5.0)
              for i, s in enumerate(shapes)]
    assert int(top_share(logits, 0.005, "global")[2].sum()) == 0
    keep = top_share(logits, 0.005, "erk")
    engine = SparseEngine(create("simple_cnn", 10), SparseSettings(density=0.005, update_frequency=0,
                                                                   total_steps=10), seed=0)
    assert [int(k.sum()) for k in keep] == engine.counts  # RigL/REST's per-layer counts at the same density
    assert all(c > 0 for c in engine.counts)
    for layer_logits, layer_keep in zip(logits, keep):  # within a layer, the largest logits win
        assert layer_logits[layer_keep].min() >= layer_logits[~layer_keep].max()
    with pytest.raises(ValueError, match="unknown mask allocation"):
        top_share(logits, 0.005, "random")


def test_density_is_the_protocol_target_or_the_flag():
    cfg, cls = mrm_cfg()
    assert cls.uses_density and cfg.density == 0.05  # REST's best at 1 % (PROTOCOL.md)
    assert mrm_cfg(density=0.3)[0].density == 0.3


def test_the_sparsity_penalty_lowers_every_logit_in_stage_2():
    from biasbench.baselines.base import TrainInfo
    from biasbench.training.models import create

    cfg, _ = mrm_cfg()
    data = tiny_data()
    method = MRM(create("simple_cnn", 2), cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))
    method.done = method.ends[0]  # the probe's first step, with no gradient from the loss at all
    optimizer = torch.optim.Adam(method.model.parameters())
    method.before_step(method.done + 1, optimizer)
    lr = cfg.method_params()["mask_lr"]
    assert all(torch.allclose(t, torch.full_like(t, 2.0 - lr)) for t in method.logits)  # Adam's first step: lr


def test_probe_freezes_the_model_and_learns_only_the_logits(recorded):
    _, _, method = recorded
    rec = method.rec
    assert all(torch.equal(rec["end1"][k], rec["end2"][k]) for k in rec["end1"])  # weights, biases, BN stats
    assert not all(torch.equal(rec["w0"][k], rec["end1"][k]) for k in rec["w0"])  # stage 1 did train
    assert all(bool((t == 2.0).all()) for t in rec["logits1"])  # untouched in stage 1
    assert any(not torch.equal(a, b) for a, b in zip(rec["logits1"], rec["logits2"]))  # learnt in stage 2


def test_subnetwork_starts_from_the_initial_weights_with_a_fresh_optimizer(recorded):
    _, _, method = recorded
    rec = method.rec
    masked = {f"{name}.weight": mask for (name, _), mask in zip(method.engine.layers, rec["masks"])}
    for k, w0 in rec["w0"].items():
        expected = w0 * masked[k] if k in masked else w0
        assert torch.equal(rec["start3"][k], expected), k
    assert rec["fresh_optimizer"]


def test_mask_reaches_the_target_and_only_masked_weights_train(recorded):
    cfg, result, method = recorded
    (stats,) = result["sparse"]
    assert stats["active"] == round(cfg.density * stats["prunable"])
    assert rec_all(method.rec["stage3_outside_zero"]) and len(method.rec["stage3_outside_zero"]) == STEPS - 8
    for (_, m), mask, fixed in zip(method.engine.layers, method.engine.masks, method.rec["masks"]):
        assert torch.equal(mask, fixed)  # static: the mask found by the probe, to the end
        assert torch.count_nonzero(m.weight[~mask]) == 0
    moved = sum(int((m.weight[mask] != method.rec["start3"][f"{n}.weight"][mask]).sum())
                for (n, m), mask in zip(method.engine.layers, method.engine.masks))
    assert moved > 0.9 * stats["active"]  # the subnetwork did train
    assert result["best_valid"]["step"] > 8 and result["best_test_oracle"]["step"] > 8  # only stage-3 models
    cost = result["accounting"]
    fs, fd = cost["inference_flops"], cost["inference_flops_dense"]
    assert cost["train_flops"] == pytest.approx(BATCH * 3 * (fs * 4 + fd * 8))  # stages 1-2 dense


def rec_all(flags: list[bool]) -> bool:
    return bool(flags) and all(flags)


def test_same_seed_same_metrics(recorded, tmp_path):
    cfg, first, _ = recorded
    again = train(cfg, tiny_data(), MRM, torch.device("cpu"), tmp_path / "b.pt")
    assert again["history"] == first["history"] and again["sparse"] == first["sparse"]


@pytest.mark.parametrize("stop_at", [8, 12])  # resumes from step 6 (mid probe) and 10 (mid retrain)
def test_resume_mid_stage_gives_the_same_result(recorded, tmp_path, stop_at):
    cfg, straight, _ = recorded

    class Stop(Exception):
        pass

    class StopAt(MRM):
        def on_evaluate(self, step, entry):
            if step == stop_at:  # the checkpoint of the evaluation before is the one left
                raise Stop

    ckpt = tmp_path / "c.pt"
    with pytest.raises(Stop):
        train(cfg, tiny_data(), StopAt, torch.device("cpu"), ckpt)
    resumed = train(cfg, tiny_data(), MRM, torch.device("cpu"), ckpt)
    assert resumed["history"] == straight["history"]
    assert resumed["sparse"] == straight["sparse"]
