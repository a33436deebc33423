"""LfF and DisEnt: the biased branch learns the shortcut, the weights find the conflicting samples,
DisEnt swaps features only after curr_step, its lr decays as the reference's StepLR, runs are
deterministic and resume exactly."""

from __future__ import annotations

import dataclasses
import warnings
from decimal import Decimal

import pytest
import torch
import torch.nn.functional as F

from biasbench.baselines import configure, get as get_method
from biasbench.baselines.base import Batch, TrainInfo
from biasbench.baselines.difficulty import SampleLossEMA, relative_difficulty
from biasbench.baselines.disent import paired_features
from biasbench.data import TensorSplit
from biasbench.baselines.disent import DisEntParams
from biasbench.training import checkpoint
from biasbench.training.models import create
from biasbench.training.trainer import RunData, train

N_CLASSES = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def colour_shortcut(n: int, conflict_share: float, seed: int) -> TensorSplit:
    """4 classes; the colour (bias) is one bright channel-pattern per class, the label a faint bar's row."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, N_CLASSES, (n,), generator=g)
    conflicting = torch.rand(n, generator=g) < conflict_share
    bias = torch.where(conflicting, (labels + torch.randint(1, N_CLASSES, (n,), generator=g)) % N_CLASSES, labels)
    palette = torch.tensor([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]], dtype=torch.uint8)
    images = palette[bias].view(n, 3, 1, 1).expand(n, 3, 16, 16).clone()
    for c in range(N_CLASSES):
        images[labels == c, :, 4 * c : 4 * c + 2, :] //= 2  # the weak true signal
    return TensorSplit(images, labels, bias, bias == labels, torch.arange(n), "x")


def tiny_data() -> RunData:
    return RunData(colour_shortcut(512, 0.05, 0), colour_shortcut(128, 0.75, 1), colour_shortcut(128, 0.75, 2),
                   N_CLASSES, N_CLASSES)


def cfg_for(method: str, seed: int = 41, steps: int = 9, eval_every: int = 3, **disent):
    cls = get_method(method)
    cfg = configure(method, "cmnist", Decimal("0.01"), seed, "cpu", 512, steps=steps, eval_every=eval_every)
    if disent:  # the cpu profile swaps from step 120: tests move it into their few steps
        cfg = dataclasses.replace(cfg, params=dataclasses.replace(cfg.params, **disent))
    return dataclasses.replace(cfg, protocol=dataclasses.replace(cfg.protocol, batch_size=64)), cls


def build(method: str, **disent):
    torch.manual_seed(0)
    cfg, cls = cfg_for(method, **disent)
    data = tiny_data()
    info = TrainInfo(len(data.train), N_CLASSES, N_CLASSES, data.train.aligned, data.train.labels)
    return cls(create("simple_cnn", N_CLASSES), cfg, info), data.train


def batch_of(split: TensorSplit, idx: torch.Tensor) -> Batch:
    return Batch(split.images[idx].float() / 255, split.labels[idx], split.bias[idx], split.aligned[idx], idx)


def fit(method, split: TensorSplit, steps: int, batch: int = 64) -> None:
    params = [p for m in method.modules().values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        for m in method.modules().values():
            m.train()
        loss = method.loss(batch_of(split, torch.randperm(len(split), generator=g)[:batch]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step(step + 1, opt)


@pytest.fixture(scope="module")
def trained_lff():
    method, split = build("lff")
    fit(method, split, steps=24)
    return method, split


def test_gce_model_loses_more_on_conflicting_than_on_aligned_samples(trained_lff):
    method, split = trained_lff
    method.biased.eval()
    with torch.no_grad():
        ce = F.cross_entropy(method.biased(split.images.float() / 255), split.labels, reduction="none")
    aligned, conflicting = ce[split.aligned].mean(), ce[~split.aligned].mean()
    assert conflicting > 3 * aligned, (float(aligned), float(conflicting))


def test_lff_weights_are_larger_on_conflicting_samples(trained_lff):
    method, split = trained_lff
    everyone = torch.arange(len(split))
    w = relative_difficulty(method.ema_b, method.ema_d, everyone, split.labels)
    seen = method.ema_b.updated.bool()
    aligned, conflicting = w[seen & split.aligned].mean(), w[seen & ~split.aligned].mean()
    assert conflicting > 1.5 * aligned, (float(aligned), float(conflicting))
    assert ((w >= 0) & (w <= 1)).all()


def test_sample_ema_stores_the_first_loss_then_blends_and_normalises_by_the_class_max():
    ema = SampleLossEMA(torch.tensor([0, 0, 1]), 2, alpha=0.7)
    ema.update(torch.tensor([2.0, 4.0]), torch.tensor([0, 2]))
    assert ema.value.tolist() == pytest.approx([2.0, 0.0, 4.0])  # first update: the loss as is
    ema.update(torch.tensor([1.0]), torch.tensor([0]))
    assert float(ema.value[0]) == pytest.approx(0.7 * 2.0 + 0.3 * 1.0)
    ema.update(torch.tensor([3.0]), torch.tensor([1]))
    assert ema.normalized(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1])).tolist() == pytest.approx(
        [1.7 / 3.0, 1.0, 1.0])


def test_disent_doubles_the_feature_batch_only_after_curr_step():
    method, split = build("disent", curr_step=5)
    shapes: list[tuple] = []
    for net in (method.model, method.bias_model):
        net.fc.register_forward_hook(lambda _m, inp, _o: shapes.append(tuple(inp[0].shape)))
    batch = batch_of(split, torch.arange(32))
    assert method.feature_dim == 256  # the Simple CNN's features, one branch each
    for step, rows in ((0, 32), (5, 32), (6, 64), (40, 64)):  # reference: swap when step > curr_step
        method.step = step
        shapes.clear()
        method.loss(batch)
        assert shapes == [(rows, 512), (rows, 512)], step


def test_swapped_rows_permute_the_bias_features_and_each_classifier_trains_only_its_encoder():
    z_i, z_b = torch.randn(6, 3, requires_grad=True), torch.randn(6, 3, requires_grad=True)
    perm = torch.tensor([5, 4, 3, 2, 1, 0])
    in_i, in_b = paired_features(z_i, z_b, perm)
    assert torch.equal(in_b[6:, 3:], z_b[perm]) and torch.equal(in_b[6:, :3], z_i)
    assert torch.equal(in_i[:6], torch.cat([z_i, z_b], 1))
    in_i.sum().backward()
    assert z_b.grad is None and z_i.grad is not None  # cross-detach


def test_disent_lr_decay_matches_steplr_stepped_from_curr_step():
    method, _ = build("disent", curr_step=10, lr_decay_step=7, lr_gamma=0.5)
    param = torch.nn.Parameter(torch.zeros(1))
    ours, ref = torch.optim.SGD([param], lr=1.0), torch.optim.SGD([param], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(ref, step_size=7, gamma=0.5)
    for step in range(60):  # learner.py: after optimizer.step(), `if step >= curr_step: scheduler.step()`
        assert ours.param_groups[0]["lr"] == ref.param_groups[0]["lr"], step
        method.after_step(step + 1, ours)
        if step >= 10:
            with warnings.catch_warnings():  # stepping a scheduler of an optimizer that never stepped
                warnings.simplefilter("ignore")
                sched.step()
    assert ours.param_groups[0]["lr"] == 0.5**7


def test_method_params_are_recorded_for_lff_and_disent_only():
    lff, disent, erm = cfg_for("lff")[0], cfg_for("disent")[0], cfg_for("erm")[0]
    assert lff.to_dict()["method_params"] == {"q": 0.7, "ema_alpha": 0.7}
    assert disent.to_dict()["method_params"]["curr_step"] == 120  # 10,000 of 50,000 steps -> 120 of 600
    assert disent.to_dict()["method_params"]["lambda_dis_align"] == 10.0
    assert "method_params" not in erm.to_dict() and "methods" not in erm.to_dict()["protocol"]
    other = cfg_for("disent", lambda_swap=0.5)[0]
    assert other.run_id("fp") != disent.run_id("fp")
    assert DisEntParams().curr_step == 10_000


class Killed(Exception):
    pass


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
@pytest.mark.parametrize("method", ["lff", "disent"])
def test_resuming_from_a_mid_run_checkpoint_gives_the_same_final_numbers(method, tmp_path, monkeypatch):
    data = tiny_data()
    kw = {"curr_step": 2, "lr_decay_step": 3} if method == "disent" else {}
    cfg, cls = cfg_for(method, steps=9, eval_every=3, **kw)
    straight = train(cfg, data, cls, torch.device("cpu"), tmp_path / "a.pt")

    original, saves = checkpoint.save, []

    def save_then_die(*a, **k):
        original(*a, **k)
        saves.append(1)
        if len(saves) == 2:  # after step 6: swap and one lr decay already happened (disent)
            raise Killed

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(Killed):
        train(cfg, data, cls, torch.device("cpu"), tmp_path / "b.pt")
    monkeypatch.setattr(checkpoint, "save", original)
    torch.manual_seed(12345)  # the resumed run must not depend on the process's RNG state
    resumed = train(cfg, data, cls, torch.device("cpu"), tmp_path / "b.pt")
    assert [h["step"] for h in resumed["history"]] == [3, 6, 9]
    assert resumed["history"] == straight["history"]
    if method == "disent":
        assert [h["lr"] for h in straight["history"]] == pytest.approx([1e-2, 5e-3, 2.5e-3])
