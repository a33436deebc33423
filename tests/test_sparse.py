"""The sparse engine, RigL/REST and the FLOPs accounting (issue 6)."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from biasbench.baselines import configure, get as get_method
from biasbench.errors import UserError
from biasbench.protocol import DENSITY_PRIOR, DENSITY_SWEEP
from biasbench.runconfig import parse_densities
from biasbench.training import flops
from biasbench.training.models import create
from biasbench.training.sparse import SparseEngine, SparseSettings, layer_densities, reset_state
from biasbench.training.trainer import train
from helpers import method_on_a_batch, tiny_data


class Tiny(nn.Module):
    """conv 3->8 k3 (216 weights), conv 8->16 k3 (1152), linear 16->4 (64); BN and biases stay dense."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        return self.fc(torch.relu(self.c2(x)).mean((2, 3)))


def engine_for(model, density=0.1, seed=0, masks=None, **kw) -> SparseEngine:
    settings = SparseSettings(density=density, total_steps=kw.pop("total_steps", 100), **kw)
    return SparseEngine(model, settings, seed=seed, masks=masks)


def global_density(engine: SparseEngine) -> tuple[int, int]:
    """(active, prunable); every nonzero weight is active (grown ones are active and still zero)."""
    for (_, m), mask in zip(engine.layers, engine.masks):
        assert torch.count_nonzero(m.weight[~mask]) == 0
    active = sum(int(mask.sum()) for mask in engine.masks)
    return active, sum(m.weight.numel() for _, m in engine.layers)


def test_erk_matches_the_formula_on_a_known_model():
    shapes = [torch.Size((8, 3, 3, 3)), torch.Size((16, 8, 3, 3)), torch.Size((4, 16))]
    sizes = [216, 1152, 64]
    raw = [(8 + 3 + 3 + 3) / 216, (16 + 8 + 3 + 3) / 1152, (4 + 16) / 64]
    # at 10 % nothing saturates: one epsilon for all layers
    eps = 0.1 * sum(sizes) / sum(r * n for r, n in zip(raw, sizes))
    assert layer_densities(shapes, 0.1, "erk") == pytest.approx([eps * r for r in raw])
    # at 40 % the linear layer's share would exceed 1 (eps x raw = 2.67): it is dense, the convs share the rest
    d = layer_densities(shapes, 0.4, "erk")
    assert d[2] == 1.0
    eps2 = (0.4 * sum(sizes) - 64) / (raw[0] * 216 + raw[1] * 1152)
    assert d[:2] == pytest.approx([eps2 * raw[0], eps2 * raw[1]])
    assert sum(x * n for x, n in zip(d, sizes)) == pytest.approx(0.4 * sum(sizes))
    assert layer_densities(shapes, 0.1, "uniform") == [0.1] * 3


@pytest.mark.slow
@pytest.mark.parametrize("density", [0.0005, 0.05, 0.9])
@pytest.mark.parametrize("init", ["erk", "uniform"])
def test_global_density_is_exact_at_init_and_after_updates(density, init):
    torch.manual_seed(0)
    model = create("simple_cnn", 10)
    engine = engine_for(model, density, init=init, update_frequency=2, total_steps=20)
    n_layers = len(engine.layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.rand(8, 3, 28, 28), torch.randint(0, 10, (8,))
    counts = list(engine.counts)
    for step in range(1, 11):
        active, total = global_density(engine)
        assert abs(active - density * total) <= 0.5 * n_layers + 1e-9
        assert [int(m.sum()) for m in engine.masks] == counts  # the layer counts never drift
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        engine.before_step(step)
        opt.step()
        engine.after_step(step, opt)
    assert engine.updates == 5
    active, total = global_density(engine)
    assert active <= sum(counts) and abs(sum(counts) - density * total) <= 0.5 * n_layers


@pytest.mark.parametrize("moments", ["dense", "masked"])
def test_masked_weights_stay_zero_under_adam_with_weight_decay(moments):
    torch.manual_seed(1)
    model = Tiny()
    engine = engine_for(model, 0.2, update_frequency=0, moments=moments)
    opt = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.1)
    x, y = torch.rand(16, 3, 6, 6), torch.randint(0, 4, (16,))
    for step in range(1, 61):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        engine.before_step(step)
        opt.step()
        engine.after_step(step, opt)
        for (_, m), mask in zip(engine.layers, engine.masks):
            assert torch.count_nonzero(m.weight[~mask]) == 0
    for (_, m), mask in zip(engine.layers, engine.masks):
        state = opt.state[m.weight]
        inactive_moments = torch.count_nonzero(state["exp_avg"][~mask])
        if moments == "masked":
            assert inactive_moments == 0  # inactive gradients are zeroed: nothing accumulates
        elif (~mask).any():
            assert inactive_moments > 0  # dense gradients (REST's sparselearning): moments follow them
        assert torch.count_nonzero(m.weight[mask]) == int(mask.sum())  # the active ones did train


def test_growth_takes_the_largest_gradients_among_inactive_positions_and_starts_them_at_zero():
    model = nn.Sequential(nn.Linear(10, 1, bias=False))
    w = model[0].weight
    engine = engine_for(model, 0.4, init="uniform", update_frequency=1, drop_fraction=0.5, total_steps=1000,
                        moments="masked")
    with torch.no_grad():
        # active: positions 0..3 with magnitudes 4, 1, 3, 2 -> drop 2: positions 1 and 3
        engine.masks[0] = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
        w.copy_(torch.tensor([[4.0, -1.0, 3.0, 2.0, 0, 0, 0, 0, 0, 0]]))
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    opt.state[w]["momentum_buffer"] = torch.full_like(w, 7.0)
    # hand-made gradient: inactive 7 and 5 are the largest; active 0 has the largest of all (must not count)
    w.grad = torch.tensor([[100.0, 0, 0, 0, 0.5, 9.0, 0.1, 10.0, 0.2, 0.3]])
    engine.before_step(1)
    opt.step()
    engine.after_step(1, opt)
    mask = engine.masks[0][0].tolist()
    assert [i for i, m in enumerate(mask) if m] == [0, 2, 5, 7]
    assert w[0, 5] == 0 and w[0, 7] == 0  # grown at zero
    assert w[0, 0] == 4.0 and w[0, 2] == 3.0 and w[0, 1] == 0 and w[0, 3] == 0
    buf = opt.state[w]["momentum_buffer"][0]
    assert buf[[1, 3, 5, 7]].tolist() == [0, 0, 0, 0]  # reset for dropped and grown
    assert buf[0] == pytest.approx(0.9 * 7 + 100) and buf[2] == pytest.approx(0.9 * 7)  # kept: untouched


def test_reset_state_zeroes_the_optimizer_state_only_where_asked():
    p = nn.Parameter(torch.ones(2, 3))
    opt = torch.optim.Adam([p])
    p.grad = torch.ones(2, 3)
    opt.step()
    where = torch.tensor([[True, False, False], [False, False, True]])
    reset_state(opt, p, where)
    for key in ("exp_avg", "exp_avg_sq"):
        assert opt.state[p][key][where].tolist() == [0, 0]
        assert torch.count_nonzero(opt.state[p][key][~where]) == 4


def _first_update_of_a_grown_weight(moments: str) -> float:
    """|w| after the first step of a weight grown at step 2000, over the learning rate.

    One linear layer, loss sum(w * c) with a constant c: every gradient is c, so an ordinary Adam step
    moves each active weight by the learning rate (m_hat / sqrt(v_hat) = 1).
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 1, bias=False))
    w = model[0].weight
    engine = engine_for(model, 0.5, init="uniform", update_frequency=2000, drop_fraction=0.5, total_steps=10_000,
                        moments=moments)
    lr = 1e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    c = torch.linspace(1.0, 2.0, 8).view(1, 8)
    grown_at = None
    for step in range(1, 2002):
        opt.zero_grad()
        (w * c).sum().backward()
        engine.before_step(step)
        before = engine.masks[0].clone()
        opt.step()
        engine.after_step(step, opt)
        if step == 2000:
            grown = engine.masks[0] & ~before
            assert grown.any() and torch.count_nonzero(w[grown]) == 0  # grown at zero
            grown_at = grown
    return float(w.detach()[grown_at].abs().max()) / lr


def test_a_grown_weight_takes_an_ordinary_first_adam_step():
    """Dense moments (the default, REST's sparselearning): the grown weight moves by lr, like any other.

    Masked moments restart at zero while Adam's step count runs on, so bias correction inflates the first
    update to (1 - b1) / sqrt((1 - b2) / (1 - b2^t)) = 2.9 x lr at t = 2001 (3.16 x for large t): the defect
    the default fixes.
    """
    assert _first_update_of_a_grown_weight("dense") == pytest.approx(1.0, rel=1e-3)
    t = 2001
    inflated = (0.1 / (1 - 0.9**t)) / (0.001 / (1 - 0.999**t)) ** 0.5
    assert inflated > 2.8
    assert _first_update_of_a_grown_weight("masked") == pytest.approx(inflated, rel=1e-3)


def test_random_growth_is_seeded_and_differs_from_gradient_growth():
    def masks_after(growth, seed):
        torch.manual_seed(0)
        model = Tiny()
        e = engine_for(model, 0.3, growth=growth, update_frequency=1, total_steps=10, seed=seed)
        for (_, m) in e.layers:
            m.weight.grad = torch.arange(m.weight.numel(), dtype=torch.float32).view_as(m.weight)
        e.before_step(1)
        e.after_step(1, None)
        return [m.clone() for m in e.masks]

    a, b, c = masks_after("random", 0), masks_after("random", 0), masks_after("gradient", 0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_same_seed_same_masks_other_seed_other_masks():
    def masks(seed):
        torch.manual_seed(3)
        return engine_for(create("simple_cnn", 10), 0.05, seed=seed).masks

    assert all(torch.equal(x, y) for x, y in zip(masks(41), masks(41)))
    assert not all(torch.equal(x, y) for x, y in zip(masks(41), masks(42)))


def test_an_engine_built_from_given_masks_keeps_them_and_their_counts():
    torch.manual_seed(0)
    model = Tiny()
    given = [torch.rand(m.weight.shape) < 0.25 for _, m in engine_for(Tiny(), 0.5).layers]
    engine = engine_for(model, 0.1, update_frequency=0, masks=given)  # settings' density does not pick them
    assert all(torch.equal(a, b) for a, b in zip(engine.masks, given))
    assert engine.counts == [int(g.sum()) for g in given]
    for (_, m), g in zip(engine.layers, given):
        assert torch.count_nonzero(m.weight[~g]) == 0 and torch.count_nonzero(m.weight[g]) == int(g.sum())
    with pytest.raises(ValueError):
        engine_for(Tiny(), 0.1, masks=given[:2])


def test_drop_fraction_decays_by_cosine_and_updates_stop_at_the_end_fraction():
    e = engine_for(Tiny(), 0.1, drop_fraction=0.3, update_frequency=100, update_end=0.75, total_steps=1000)
    assert e.drop_fraction(0) == pytest.approx(0.3)
    assert e.drop_fraction(375) == pytest.approx(0.15)
    assert e.drop_fraction(750) == pytest.approx(0.0, abs=1e-12)
    assert [s for s in range(1, 1001) if e.is_update_step(s)] == [100, 200, 300, 400, 500, 600, 700]
    floor = engine_for(Tiny(), 0.1, drop_fraction=0.5, drop_floor=0.005, update_end=1.0, total_steps=1000)
    assert floor.drop_fraction(1000) == 0.005 and floor.is_update_step(1000)


def test_flops_of_a_known_layer_at_a_known_density():
    conv = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=False))
    x = torch.zeros(1, 4, 5, 5)
    total, per_layer = flops.count(lambda: conv(x), [conv])
    dense = 2 * 5 * 5 * 6 * 4 * 3 * 3  # 2 FLOPs per multiply-add
    assert total == dense and per_layer == {id(conv[0]): dense}
    assert flops.at_density(total, per_layer, {id(conv[0]): 0.25}) == pytest.approx(dense * 0.25)


def rest_cfg(method="rest", steps=12, density=None, **protocol):
    """A cpu-profile config; `protocol` replaces profile fields (small batches keep the tests fast)."""
    cls = get_method(method)
    cfg = configure(method, "cmnist", Decimal("0.01"), 41, "cpu", 1024, steps=steps, eval_every=4, density=density)
    if protocol:
        cfg = dataclasses.replace(cfg, protocol=dataclasses.replace(cfg.protocol, **protocol))
    return cfg, cls


def test_rest_weights_only_conflicting_samples_and_rigl_does_not_reweight():
    cfg, cls = rest_cfg("rest")
    model, method, batch = method_on_a_batch(cfg, cls, 128)
    info = method.train
    assert (~batch.aligned).any() and batch.aligned.any()
    per = F.cross_entropy(model(batch.x), batch.y, reduction="none")
    expected = torch.where(batch.aligned, per, cfg.beta * per).mean()
    assert float(method.loss(batch).detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    rigl_cfg, rigl = rest_cfg("rigl", density=cfg.density)  # the same density: the same seeded masks
    assert rigl_cfg.beta is None
    assert float(rigl(model, rigl_cfg, info).loss(batch).detach()) == pytest.approx(float(per.mean().detach()), rel=1e-5)


def test_rest_run_records_its_sparsity_and_costs(tmp_path):
    cfg, cls = rest_cfg("rest", steps=8, batch_size=64)
    d = cfg.density
    assert d == cfg.protocol.chosen_density.get("rest", DENSITY_PRIOR) and "density" not in cfg.overrides
    assert cfg.density_rule == ("valid" if "rest" in cfg.protocol.chosen_density else "prior")
    result = train(cfg, tiny_data(), cls, torch.device("cpu"), tmp_path / "r.pt")
    cost, (stats,) = result["accounting"], result["sparse"]
    assert stats["updates"] == 0  # cpu profile: every 25 steps, none in 8
    assert abs(stats["active"] - d * stats["prunable"]) <= 0.5 * len(stats["layers"])
    assert cost["params_nonzero"] == cost["params_dense"] - (stats["prunable"] - stats["active"])
    assert 0 < cost["inference_flops"] < cost["inference_flops_dense"]
    assert cost["train_flops"] == pytest.approx(64 * 8 * 3 * cost["inference_flops"])


def test_update_steps_add_the_dense_backward_to_training_flops(tmp_path):
    cfg, cls = rest_cfg("rigl", steps=12, density=0.3, batch_size=32, update_frequency=5)
    result = train(cfg, tiny_data(), cls, torch.device("cpu"), tmp_path / "u.pt")
    cost = result["accounting"]
    assert cost["topology_updates"] == 1  # at step 5; 10 > 0.75 x 12
    fs, fd = cost["inference_flops"], cost["inference_flops_dense"]
    assert cost["train_flops"] == pytest.approx(32 * (12 * 3 * fs + (fd - fs)))


@pytest.mark.slow
def test_sparse_run_resumes_with_its_masks(tmp_path):
    cfg, cls = rest_cfg("rest", steps=16, density=0.1, batch_size=32, update_frequency=3)
    data = tiny_data()
    straight = train(cfg, data, cls, torch.device("cpu"), tmp_path / "a.pt")
    ckpt = tmp_path / "b.pt"

    class Stop(Exception):
        pass

    class StopAt(cls):
        def on_evaluate(self, step, entry):
            if step == 8:  # after two topology updates, before the rest
                raise Stop

    with pytest.raises(Stop):
        train(cfg, data, StopAt, torch.device("cpu"), ckpt)
    resumed = train(cfg, data, cls, torch.device("cpu"), ckpt)
    assert straight["sparse"][0]["updates"] == 4  # steps 3, 6, 9, 12 (<= 0.75 x 16)
    assert resumed["history"] == straight["history"]
    assert resumed["sparse"] == straight["sparse"]


def test_density_parsing_and_defaults():
    assert parse_densities(None) == [None]
    assert parse_densities("sweep") == list(DENSITY_SWEEP) and len(DENSITY_SWEEP) == 14
    assert parse_densities("0.05,0.5") == [0.05, 0.5]
    for bad in ("0", "1.5", "dense"):
        with pytest.raises(UserError):
            parse_densities(bad)
    default, _ = rest_cfg()
    named, _ = rest_cfg(density=default.density)
    assert named == default  # naming the default density is the same run
    assert parse_densities("rest-published") == ["rest-published"]
    published, _ = rest_cfg(density="rest-published")  # REST Table 2's best at 1 %: a named variant, not a default
    assert published.density == 0.05 and published.density_rule == "rest-published"
    user, _ = rest_cfg(density=0.05)
    assert user.run_id("f") == published.run_id("f") and user.density_rule == "user"  # same run, other label
    other, _ = rest_cfg(density=0.5)
    assert other.overrides["density"] == 0.5 and other.density == 0.5
    assert math.isclose(rest_cfg("rest")[0].beta, 30.0)


def test_density_mistakes_are_one_line_errors(tmp_path, capsys):
    from helpers import assert_one_line_error, run

    for args, message in [
        (("--method", "erm", "--density", "0.5"), "sparse methods only"),
        (("--method", "rest", "--density", "sweep,2"), "--density"),
    ]:
        code, _, err = run(capsys, "run", *args, "--data-dir", str(tmp_path), "--results", str(tmp_path / "r"))
        assert_one_line_error(code, err, message)
    assert not (tmp_path / "r").exists()  # refused before anything is written
