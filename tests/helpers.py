"""Helpers the tests share (import from here, not from another test module)."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import numpy as np
import torch

from biasbench.baselines import configure, get as get_method
from biasbench.cli import main
from biasbench.data import TensorSplit
from biasbench.sources import cifar10
from biasbench.training.trainer import RunData
from torch import nn


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own exits
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error" in lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def fake_batches(n: int = 20) -> dict[str, bytes]:
    """Batches in the official format (protocol 2 dicts of numpy data + int labels)."""
    out = {}
    for k, name in enumerate(cifar10.OFFICIAL_MD5):
        images = ((np.arange(n * 3072, dtype=np.int64) * (k + 3)) % 251).astype(np.uint8).reshape(n, 3072)
        batch = {"batch_label": f"batch {k}", "labels": [(i + k) % 10 for i in range(n)], "data": images,
                 "filenames": [f"img_{k}_{i}.png" for i in range(n)]}
        out[name] = pickle.dumps(batch, protocol=2)
    return out


def write_folder(path, batches):
    folder = path / cifar10.FOLDER
    folder.mkdir(parents=True)
    for name, data in batches.items():
        (folder / name).write_bytes(data)
    return path


METRICS = ("unbiased", "conflicting", "aligned", "worst_group", "accuracy")


def record(method: str, dataset: str, ratio: str, seed: int, acc: float, profile: str = "cpu", variant: str = "",
           density: float | None = None, oracle: float | None = None) -> dict:
    """A run record with just what the leaderboard reads; acc in % (all metrics equal)."""

    def entry(value: float) -> dict:
        metrics = {m: value / 100 for m in METRICS}
        return {"step": 10, "test": metrics, "valid": metrics}

    return {
        "format": "biasbench-run/1", "run_id": f"{dataset}-{ratio}-{method}-{profile}-s{seed}-{variant}",
        "method": method, "dataset": dataset, "ratio": ratio, "profile": profile, "variant": variant, "seed": seed,
        "best_valid": entry(acc), "final": entry(acc), "best_test_oracle": entry(oracle if oracle is not None else acc),
        "data": {"fingerprint": "f" * 64}, "config": {"protocol": {"headline": "unbiased"}, "density": density},
        "accounting": {"density": density} if density is not None else {}, "params": 1, "git_commit": "abc",
        "device": "cpu", "torch_version": "x", "finished_at": "2026-11-25T00:00:00Z",
    }


def seeds(method, dataset, ratio, values, **kw) -> list[dict]:
    return [record(method, dataset, ratio, 41 + i, v, **kw) for i, v in enumerate(values)]


def shortcut_split(n: int, conflict_share: float, seed: int) -> TensorSplit:
    """2 classes; colour (bias) = red/green, digit-like cue = a faint bar; aligned: colour == label."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    conflicting = torch.rand(n, generator=g) < conflict_share
    bias = torch.where(conflicting, 1 - labels, labels)
    images = torch.zeros(n, 3, 16, 16, dtype=torch.uint8)
    images[:, 0] = torch.where(bias == 0, 200, 20).view(-1, 1, 1).to(torch.uint8)
    images[:, 1] = torch.where(bias == 1, 200, 20).view(-1, 1, 1).to(torch.uint8)
    images[labels == 1, 2, 6:10, :] = 60  # the weak true signal
    return TensorSplit(images, labels, bias, bias == labels, torch.arange(n), "x")


def tiny_data() -> RunData:
    return RunData(shortcut_split(1024, 0.02, 0), shortcut_split(256, 0.5, 1), shortcut_split(512, 0.5, 2), 2, 2)


def tiny_cfg(method: str = "erm", steps: int = 12, seed: int = 41):
    cls = get_method(method)
    cfg = configure(method, "cmnist", Decimal("0.01"), seed, "cpu", 1024, steps=steps, eval_every=4)
    return cfg, cls


def method_on_a_batch(cfg, cls, n: int):
    """(model in eval mode, the method around it, a batch of the first n training rows)."""
    from biasbench.baselines.base import Batch, TrainInfo
    from biasbench.training.models import create

    data = tiny_data()
    info = TrainInfo(1024, 2, 2, data.train.aligned, data.train.labels)
    model = create("simple_cnn", 2)
    model.eval()
    x = data.train.images[:n].float() / 255
    batch = Batch(x, data.train.labels[:n], data.train.bias[:n], data.train.aligned[:n], torch.arange(n))
    return model, cls(model, cfg, info), batch


# 3,000 train images: LfF's rule keeps 80 % of 8,000 aligned up to 20 %, enough to hold 5,000 out for valid;
# a 5 % config is still mostly aligned (13 %: LfF's count over 3,000) and 1 % has conflicts in every class
N_PER_BATCH, N_TEST = 1600, 200


def write_fake_cifar(path):
    folder = path / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        n = N_TEST if name == "test_batch" else N_PER_BATCH
        i = np.arange(n)[:, None] + 10_000 * k
        x = np.arange(3072)[None, :]
        data = ((i * 31 + x * 7 + (x // 32) * (i % 5)) % 256).astype(np.uint8)
        labels = [int(v) for v in (np.arange(n) * 3 + k) % 10]
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}, protocol=2))
    return path


# ---- the contracts every registered method and dataset keep (tests/test_contract.py, test_dataset_contract.py,
# test_extending.py) ----------------------------------------------------------------------------------------

# Step counts a method's own numbers give for long runs, shortened so that a few steps cover every phase.
SHORTEN = {"disent": {"curr_step": 2, "lr_decay_step": 3}, "mrm": {"stage_lengths": (0.5, 0.5)}}


def contract_data() -> RunData:
    """Smaller than tiny_data: the contract trains every method four times; 256 rows are 4 batches of 64."""
    return RunData(shortcut_split(256, 0.05, 0), shortcut_split(64, 0.5, 1), shortcut_split(64, 0.5, 2), 2, 2)


def small_batches(cfg, batch_size: int = 64):
    """The config with batches of 64: a quarter of the work per step, for tests of the loop, not of learning."""
    import dataclasses

    return dataclasses.replace(cfg, protocol=dataclasses.replace(cfg.protocol, batch_size=batch_size))


def contract_cfg(method: str, seed: int = 41):
    import dataclasses

    cfg = configure(method, "cmnist", Decimal("0.01"), seed, "cpu", 256, steps=6, eval_every=2)
    if method in SHORTEN:
        cfg = dataclasses.replace(cfg, params=dataclasses.replace(cfg.params, **SHORTEN[method]))
    return small_batches(cfg)


class _Stop(Exception):
    pass


def assert_keeps_the_trainers_contract(method: str, tmp_path) -> None:
    """Same seed same history (stopped at the second evaluation and resumed), another seed another, a result
    the read-time selection re-makes, a registry entry tables can show."""
    from biasbench.methods import display
    from biasbench.results import selection
    from biasbench.training.trainer import train

    cls, data, cpu = get_method(method), contract_data(), torch.device("cpu")
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
                raise _Stop

    try:
        train(cfg, data, StopAtTheSecondEvaluation, cpu, tmp_path / "d.pt")
        raise AssertionError("the run did not reach its second evaluation")
    except _Stop:
        pass
    resumed = train(cfg, data, cls, cpu, tmp_path / "d.pt")
    # an independent run of the same seed, stopped and resumed: the same history proves both determinism and resume
    assert resumed["history"] == first["history"], "same seed, stopped and resumed: another history"

    record = {"method": method, "history": first["history"], "config": cfg.to_dict()}
    assert selection.choose(record, "valid") == first["best_valid"]
    assert selection.choose(record, "oracle") == first["best_test_oracle"]
    assert isinstance(cls.uses_bias_labels, bool) and display(method).name


def assert_keeps_the_formats_contract(name: str, source, tmp_path) -> None:
    """Generates deterministically (1 and 2 workers), verifies, loads with `datasets.load_dataset` and as
    tensors, exports in both references' layouts; its registry entry is complete."""
    from datasets import load_dataset

    from biasbench.data import load as load_tensors
    from biasbench.dataset_format.folder import DatasetFolder
    from biasbench.dataset_format.verify import verify
    from biasbench.datasets import get as get_dataset
    from biasbench.export import export
    from biasbench.generators.build import generate

    ratio = Decimal("0.05")
    first = generate(name, [ratio], tmp_path / "a", 0, source, allow_unverified=True, workers=1)
    again = generate(name, [ratio], tmp_path / "b", 0, source, allow_unverified=True, workers=2)
    folder, other = DatasetFolder(first.path, name), DatasetFolder(again.path, name)
    (config,), (config_again,) = folder.configs(), other.configs()
    assert config.name == "5pct" and config.fingerprint == config_again.fingerprint, "not deterministic"
    assert all(check.ok for check in verify(first.path)), [c.line() for c in verify(first.path)]

    gen = get_dataset(name)
    loaded = load_dataset(str(first.path), config.name)
    for split in ("train", "valid", "test"):
        n = int(config.splits[split]["num_examples"])
        assert loaded[split].num_rows == n > 0
        tensors = load_tensors(name, ratio, split, path=first.path, use_cache=False)
        assert len(tensors) == n and tensors.images.dtype.is_floating_point is False
        assert int(tensors.labels.max()) < len(gen.schema.label_names)
        assert int(tensors.bias.max()) < len(gen.schema.bias_names)
    train = load_tensors(name, ratio, "train", path=first.path, use_cache=False)
    conflicting = float((~train.aligned).float().mean())
    assert 0 < conflicting < 0.2, f"train conflicting share {conflicting:.3f} for a 5 % config"

    for fmt in ("disent", "lff"):
        report = export(folder, folder.configs(), fmt, tmp_path / fmt)
        assert sum(report.written.values()) >= int(config.splits["train"]["num_examples"]), (fmt, report.written)

    assert gen.name == name and gen.card_meta and gen.export_layout and isinstance(gen.fits_cpu, bool)


# ---- reference-step replays (tests/test_*_reference_step.py) -------------------------------------------------


def recording(base: type, on_step) -> type:
    """`base` as the trainer runs it, keeping its initial networks and each step's batch and loss, and calling
    `on_step(method, step, optimizer)` after every optimizer step (where a reference replays that step)."""

    class Recorded(base):
        def __init__(self, model, cfg, info):
            super().__init__(model, cfg, info)
            self.initial = {name: copy.deepcopy(m) for name, m in self.modules().items()}
            self.info, self.batches, self.losses = info, [], []

        def loss(self, batch):
            loss = super().loss(batch)
            self.batches.append((batch.index.clone(), batch.x.clone(), batch.y.clone()))
            self.losses.append(loss.detach().clone())
            return loss

        def after_step(self, step, optimizer):
            super().after_step(step, optimizer)
            on_step(self, step, optimizer)

    return Recorded


def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    pairs = list(zip(a.parameters(), b.parameters(), strict=True))
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in pairs)
