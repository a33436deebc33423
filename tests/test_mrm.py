"""MRM: the probe freezes the model (in eval mode), pi > 0 or --density makes the mask, the subnetwork
restarts from w0 and trains the full budget on its masked weights only, runs are deterministic and
resume mid-stage exactly."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
import torch

from biasbench.baselines.mrm import MRM, hard_gumbel_sigmoid, stage_ends, top_share
from biasbench.errors import UserError
from biasbench.baselines import configure
from biasbench.training.trainer import train
from helpers import tiny_data

STEPS, EVERY, BATCH = 4, 2, 32  # stages: steps 1-4, 5-8, then the 4-step budget 9-12; evaluations every 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mrm_cfg(density: float | None = None):
    """The cpu profile's MRM at 1 % with a tiny budget and small batches."""
    cfg = configure("mrm", "cmnist", Decimal("0.01"), 41, "cpu", 1024, steps=STEPS, eval_every=EVERY,
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


def test_stages_1_and_2_come_before_a_full_budget_for_the_subnetwork():
    assert stage_ends(4, (1.0, 1.0)) == (4, 8)
    assert stage_ends(600, (1.0, 1.0)) == (600, 1200)  # cpu: 1,800 steps, the last 600 the subnetwork's
    assert stage_ends(3, (0.1, 0.1)) == (1, 2)  # every stage gets a step
    with pytest.raises(UserError):
        stage_ends(0, (1.0, 1.0))
    cfg, _ = mrm_cfg()
    assert tuple(cfg.method_params()["stage_lengths"]) == (1.0, 1.0)


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


def test_density_is_the_probes_unless_the_flag_sets_it():
    cfg, cls = mrm_cfg()
    assert cls.uses_density and cfg.density is None and cfg.density_rule == "method"  # pi > 0 decides
    flagged, _ = mrm_cfg(density=0.3)
    assert flagged.density == 0.3 and flagged.density_rule == "user" and flagged.overrides["density"] == 0.3


def test_with_a_density_the_final_mask_keeps_each_layers_erk_count_of_the_largest_logits():
    from biasbench.baselines.base import TrainInfo
    from biasbench.training.models import create
    from biasbench.training.sparse import layer_counts

    cfg, _ = mrm_cfg(density=0.3)
    data = tiny_data()
    method = MRM(create("simple_cnn", 2), cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))
    with torch.no_grad():
        for i, t in enumerate(method.logits):
            t.copy_(torch.randn(t.shape, generator=torch.Generator().manual_seed(i)))
    keep = method.final_masks()
    assert [int(k.sum()) for k in keep] == layer_counts([t.shape for t in method.logits], 0.3, "erk")
    probe, _ = mrm_cfg()
    method.cfg = probe
    assert all(torch.equal(k, t > 0) for k, t in zip(method.final_masks(), method.logits))


def test_the_probe_runs_the_frozen_model_in_eval_mode():
    from biasbench.baselines.base import TrainInfo
    from biasbench.training.models import create

    cfg, _ = mrm_cfg()
    data = tiny_data()
    torch.manual_seed(0)
    model = create("simple_cnn", 2)
    method = MRM(model, cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))
    x = torch.rand(8, 3, 28, 28)
    with torch.no_grad():
        for _, m in method.layers:
            m.weight.mul_(3.0)  # so that batch statistics and running statistics differ
        model.eval()
        expected = model(x)
        model.train()
        probed = method._frozen_forward(x, [torch.ones_like(m.weight) for _, m in method.layers])
        batch_stats = model(x)
    assert model.training  # the trainer's mode is given back
    assert torch.allclose(probed, expected, atol=1e-5)
    assert not torch.allclose(probed, batch_stats, atol=1e-3)


def test_the_sparsity_penalty_lowers_every_logit_in_stage_2():
    from biasbench.baselines.base import TrainInfo
    from biasbench.training.models import create

    cfg, _ = mrm_cfg()
    data = tiny_data()
    method = MRM(create("simple_cnn", 2), cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))
    method.done = method.ends[0]  # the probe's first step, with no gradient from the loss at all
    optimizer = torch.optim.Adam(method.model.parameters())
    method.before_step(method.done + 1, optimizer)
    params = cfg.method_params()
    g = params["alpha"] / BATCH  # the penalty's gradient per logit
    step = params["mask_lr"] * g / (g + 1e-8)  # Adam's first step: lr, less its eps's share
    assert all(torch.allclose(t, torch.full_like(t, 2.0 - step)) for t in method.logits)


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
    assert stats["active"] == sum(int((t > 0).sum()) for t in method.rec["logits2"])  # pi > 0
    assert [m.tolist() for m in method.rec["masks"]] == [(t > 0).tolist() for t in method.rec["logits2"]]
    assert result["steps_trained"] == 3 * STEPS and len(method.rec["stage3_outside_zero"]) == STEPS
    assert rec_all(method.rec["stage3_outside_zero"])
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
    assert cost["train_flops_dense"] == pytest.approx(BATCH * 3 * fd * STEPS)  # dense ERM at the common budget
    assert cost["train_flops_ratio"] > 2  # stages 1-2 on top of the budget: MRM costs more than ERM


def rec_all(flags: list[bool]) -> bool:
    return bool(flags) and all(flags)


def test_same_seed_same_metrics(recorded, tmp_path):
    cfg, first, _ = recorded
    again = train(cfg, tiny_data(), MRM, torch.device("cpu"), tmp_path / "b.pt")
    assert again["history"] == first["history"] and again["sparse"] == first["sparse"]


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
@pytest.mark.parametrize("stop_at", [8, 12])  # resumes from step 6 (mid probe) and 10 (mid retrain)
def test_resume_mid_stage_gives_the_same_result(recorded, tmp_path, stop_at):
    cfg, straight, _ = recorded

    class Stop(Exception):
        pass

    class StopAt(MRM):
        def on_evaluate(self, step, entry):
            super().on_evaluate(step, entry)
            if step == stop_at:  # the checkpoint of the evaluation before is the one left
                raise Stop

    ckpt = tmp_path / "c.pt"
    with pytest.raises(Stop):
        train(cfg, tiny_data(), StopAt, torch.device("cpu"), ckpt)
    resumed = train(cfg, tiny_data(), MRM, torch.device("cpu"), ckpt)
    assert resumed["history"] == straight["history"]
    assert resumed["sparse"] == straight["sparse"]


def test_the_penalty_is_divided_by_the_batch_size_as_the_references():
    """RobertCsordas/modules tasks/task.py train_step: (mask_loss / batch_size).backward(), CE a batch mean."""
    from biasbench.baselines.base import TrainInfo
    from biasbench.training.models import create

    cfg, _ = mrm_cfg()
    assert cfg.method_params()["penalty_per"] == "sample"
    data = tiny_data()
    method = MRM(create("simple_cnn", 2), cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))
    method.done = method.ends[0]
    method.before_step(method.done + 1, torch.optim.Adam(method.model.parameters()))
    alpha = cfg.method_params()["alpha"]
    for t in method.logits:  # Adam's first moment after one step: (1 - beta1) x the gradient alpha / B
        assert torch.allclose(method.mask_opt.state[t]["exp_avg"], torch.full_like(t, 0.1 * alpha / BATCH))


def test_the_probe_draws_one_mask_sample_per_quarter_of_the_batch():
    """The reference's 4 mask samples per step, each masking its share of the batch (layers/batch_ops.py)."""
    import torch.nn.functional as F

    from biasbench.baselines.base import Batch, TrainInfo
    from biasbench.training.models import create

    cfg, _ = mrm_cfg()
    assert cfg.method_params()["mask_samples"] == 4
    data = tiny_data()
    torch.manual_seed(0)
    method = MRM(create("simple_cnn", 2), cfg, TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels))
    with torch.no_grad():
        for t in method.logits:
            t.zero_()  # p = 0.5: samples differ
    method.done = method.ends[0]
    x = data.train.images[:16].float() / 255
    y = data.train.labels[:16]
    loss = method.loss(Batch(x, y, data.train.bias[:16], data.train.aligned[:16], torch.arange(16)))
    g = method._generator(method.done + 1)
    parts = []
    samples = []
    for part in x.tensor_split(4):
        masks = [hard_gumbel_sigmoid(t, 1.0, g) for t in method.logits]
        samples.append(masks[0])
        parts.append(method._frozen_forward(part, masks))
    assert float(loss) == pytest.approx(float(F.cross_entropy(torch.cat(parts), y)), rel=1e-6)
    assert not torch.equal(samples[0], samples[1])


def test_every_record_keeps_the_density_of_each_stage(recorded):
    _, result, method = recorded
    stages = result["stage_density"]
    assert stages["erm"] == 1.0
    kept = [int((t > 0).sum()) for t in method.rec["logits2"]]
    total = sum(t.numel() for t in method.rec["logits2"])
    assert stages["probe"]["density"] == pytest.approx(sum(kept) / total)
    assert stages["subnetwork"]["density"] == pytest.approx(result["sparse"][0]["density"])
    assert set(stages["probe"]["layers"]) == {name for name, _ in method.layers}
    by_step = {h["step"]: h["density"] for h in result["history"]}
    assert by_step[2] == 1.0 and by_step[4] == 1.0  # stage 1: the dense model
    assert by_step[12] == pytest.approx(stages["subnetwork"]["density"])


def test_cpu_probes_can_move_a_logit_past_zero_on_every_dataset():
    """Mask lr x probe steps >= the init 2.0 (a penalty-held logit falls about one lr per Adam step)."""
    from biasbench.baselines import configure as conf

    for dataset, n in (("cmnist", 1024), ("cifar10c", 1024), ("bffhq", 1024)):
        cfg = conf("mrm", dataset, Decimal("0.01"), 41, "cpu", n)
        params = cfg.method_params()
        travel = params["mask_lr"] * cfg.steps * params["stage_lengths"][1]
        assert travel > params["mask_init"], dataset
        if dataset != "cmnist":  # the CIFAR-10 profile's 1e-3 would stop short of pi = 0 in this probe
            assert 1e-3 * cfg.steps * params["stage_lengths"][1] < params["mask_init"], dataset
    paper = conf("mrm", "cifar10c", Decimal("0.01"), 41, "paper", 1024).method_params()
    assert (paper["alpha"], paper["mask_lr"]) == (3e-4, 1e-3)  # the reference's CIFAR-10 profile
