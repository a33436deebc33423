"""Benchmark: training images/s for ERM on Colored MNIST (Simple CNN, batch 256), side by side.

(a) biasbench's trainer (tensors in memory, batches by index, the method interface),
(b) the reference repos' pipeline: PNG files -> PIL -> ToTensor -> DataLoader with workers,
(c) compute only: the same model and optimizer on one fixed random batch.
(d) other methods (`--methods`, default lff,disent,mrm,rigl,rest) through the trainer as in (a);
    their step time relative to ERM's is (a)'s img/s over theirs (MRM: the mean over
    its three stages, run in their protocol shares).

Steady state: the first `--warmup` steps of each variant are not timed. Variants
run interleaved, `--repeats` times, in this one process. Prints a table and
writes benchmarks/results/train_throughput.json.

    .venv/bin/python benchmarks/train_throughput.py [--steps 60] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from provenance import provenance

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
BATCH = 256


class StepClock:
    """A progress 'bar' that timestamps every step (the trainer calls update once per step)."""

    def __init__(self):
        self.times: list[float] = []

    def update(self, n: int) -> None:
        self.times.append(time.perf_counter())

    def close(self) -> None:
        pass

    def rate(self, warmup: int) -> float:
        t = self.times[1:]  # the first update is the resume offset (0 steps)
        return BATCH * (len(t) - 1 - warmup) / (t[-1] - t[warmup])


class ClockReporter:
    def __init__(self):
        self.clock = StepClock()

    def info(self, message: str) -> None:
        pass

    def bar(self, total: int, desc: str, unit: str) -> StepClock:
        self.clock = StepClock()
        return self.clock


def ours(data, steps: int, warmup: int, device: torch.device, tmp: Path, method: str = "erm",
         profile: str = "cpu") -> float:
    from biasbench.baselines import configure, get
    from biasbench.training.trainer import train

    cls = get(method)
    cfg = configure(method, "cmnist", Decimal("0.01"), 41, profile, len(data.train), steps=steps)
    if method == "disent":  # time the swapping phase (the costlier one): swap from the first step
        import dataclasses

        cfg = dataclasses.replace(cfg, params=dataclasses.replace(cfg.params, curr_step=0))
    reporter = ClockReporter()
    ckpt = tmp / "bench.pt"
    ckpt.unlink(missing_ok=True)
    train(cfg, data, cls, device, ckpt, reporter)
    return reporter.clock.rate(warmup)


class PngFolder(torch.utils.data.Dataset):
    """What DisEnt/LfF-style loaders do: one PNG file per sample, decoded per access."""

    def __init__(self, files: list[Path], labels: list[int]):
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from torchvision.transforms.functional import to_tensor

        with Image.open(self.files[i]) as im:
            return to_tensor(im.convert("RGB")), self.labels[i]


def reference(files, labels, steps: int, warmup: int, device: torch.device, workers: int) -> float:
    from biasbench.training.models import create

    torch.manual_seed(0)
    model = create("simple_cnn", 10).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(PngFolder(files, labels), batch_size=BATCH, shuffle=True,
                                         num_workers=workers, drop_last=True, persistent_workers=False)
    times, it = [], iter(loader)
    for _ in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter())
    return BATCH * (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def bare_loop(data, steps: int, warmup: int, device: torch.device, profile: str) -> float:
    """The fewest lines that train the profile's model as the trainer does: the same uint8 tensors in
    memory, a fresh permutation per epoch, the same scaling, model, batch and optimizer, nothing else."""
    from biasbench.protocol import protocol_for
    from biasbench.training.models import create

    p = protocol_for(profile, "cmnist")
    torch.manual_seed(0)
    images, labels = data.train.images.to(device), data.train.labels.to(device)
    model = create(p.model, 10, images.shape[1], p.image_size, p.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr, betas=p.adam_betas, weight_decay=p.weight_decay)
    g = torch.Generator().manual_seed(0)
    order, at, times = torch.randperm(len(images), generator=g), 0, []
    for _ in range(steps):
        if at + BATCH > len(order):
            order, at = torch.randperm(len(images), generator=g), 0
        idx = order[at : at + BATCH].to(device)
        at += BATCH
        x = images[idx].float().div_(255.0)
        if p.input_divisor != 1.0:
            x = x.div_(p.input_divisor)
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # the trainer reads the loss every step too
        times.append(time.perf_counter())
    return BATCH * (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def interleave(variants: dict, repeats: int) -> dict[str, list[float]]:
    """Each variant once per round, `repeats` rounds: the machine's drift falls on all of them alike."""
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            rates[name].append(fn())
    return rates


def print_rates(what: str, device: torch.device, args, rates: dict[str, list[float]]) -> dict[str, float]:
    """The table (min / median / max img/s per variant); returns the medians."""
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{what}, CMNIST 1pct, batch {BATCH}, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.steps} steps ({args.warmup} untimed), {args.repeats} repeats")
    print(f"{'variant':<32}{'img/s min':>11}{'median':>9}{'max':>9}")
    for k, v in rates.items():
        print(f"{k:<32}{min(v):>11.0f}{med[k]:>9.0f}{max(v):>9.0f}")
    return med


def compute_only(steps: int, warmup: int, device: torch.device, channels_last: bool) -> float:
    from biasbench.training.models import create

    torch.manual_seed(0)
    model = create("simple_cnn", 10).to(device)
    x = torch.rand(BATCH, 3, 28, 28, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    times = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return BATCH * (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for (b)")
    parser.add_argument("--data-dir", type=Path, help="root with a generated cmnist (default: build one in a temp dir)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train_throughput.json")
    parser.add_argument("--methods", default="lff,disent,mrm,rigl,rest",
                        help="(d) other methods through the same trainer, reported as step time relative to ERM (a)")
    parser.add_argument("--mlp", action="store_true",
                        help="the `disent` profile's MLP instead: (a) the trainer against (e) a bare loop of the same "
                             "model, batch and optimizer (target: (a) >= 0.9 x (e)), plus (d) --methods")
    args = parser.parse_args()
    if args.mlp and args.out == HERE / "results" / "train_throughput.json":
        args.out = HERE / "results" / "train_throughput_mlp.json"
    device = torch.device(args.device)

    from biasbench import data as tensors
    from biasbench.generators.build import generate
    from biasbench.runner import load_run_data
    from biasbench.dataset_format.folder import DatasetFolder

    tmp = Path(tempfile.mkdtemp(prefix="bb-throughput-"))
    try:
        root = args.data_dir
        if root is None:
            if not SHARED_MNIST.is_dir():
                sys.exit(f"no --data-dir and no MNIST at {SHARED_MNIST}")
            root = tmp / "data"
            generate("cmnist", [Decimal("0.01")], root, 0, SHARED_MNIST, workers=2)
        folder = DatasetFolder(root / "cmnist", "cmnist")
        run_data, _ = load_run_data(folder, Decimal("0.01"))
        if args.mlp:
            return mlp_report(args, run_data, device, tmp)
        # (b) needs the train split as PNG files, as the DisEnt release ships it
        train = tensors.load("cmnist", "1pct", "train", root=root)
        png_dir = tmp / "png"
        files, labels = [], []
        for i in range(len(train)):
            path = png_dir / f"{i // 1000}" / f"{i}_{int(train.labels[i])}_{int(train.bias[i])}.png"
            files.append(path)
            labels.append(int(train.labels[i]))
        for d in {p.parent for p in files}:
            d.mkdir(parents=True, exist_ok=True)
        images = train.images.permute(0, 2, 3, 1).numpy()
        for path, image in zip(files, images):
            Image.fromarray(image).save(path)

        variants = {
            "a_biasbench_trainer": lambda: ours(run_data, args.steps, args.warmup, device, tmp),
            "b_png_dataloader": lambda: reference(files, labels, args.steps, args.warmup, device, args.workers),
            "c_compute_only_channels_last": lambda: compute_only(args.steps, args.warmup, device, True),
            "c_compute_only_contiguous": lambda: compute_only(args.steps, args.warmup, device, False),
        }
        for m in filter(None, args.methods.split(",")):
            variants[f"d_method_{m}"] = lambda m=m: ours(run_data, args.steps, args.warmup, device, tmp, m)
        rates = interleave(variants, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = print_rates("ERM, Simple CNN", device, args, rates)
    a, b, c = med["a_biasbench_trainer"], med["b_png_dataloader"], med["c_compute_only_channels_last"]
    print(f"(a)/(c) = {a / c:.2f} (target >= 0.95); (a)/(b) = {a / b:.2f} (target >= 1.2); "
          f"channels_last gain on (c): {c / med['c_compute_only_contiguous']:.2f}x")
    step_time_vs_erm = {k[len("d_method_"):]: a / v for k, v in med.items() if k.startswith("d_method_")}
    for m, r in step_time_vs_erm.items():
        print(f"(d) {m}: step time {r:.2f}x ERM's (a)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        **provenance(), "device": str(device), "steps": args.steps, "warmup": args.warmup, "rates": rates, "median": med,
        "step_time_vs_erm": step_time_vs_erm,
    }, indent=2) + "\n")


def mlp_report(args, run_data, device: torch.device, tmp: Path) -> None:
    """(a) the trainer and (e) a bare loop on the `disent` profile's MLP, interleaved; (d) other methods."""
    variants = {
        "a_biasbench_trainer": lambda: ours(run_data, args.steps, args.warmup, device, tmp, profile="disent"),
        "e_bare_loop": lambda: bare_loop(run_data, args.steps, args.warmup, device, "disent"),
    }
    for m in filter(None, args.methods.split(",")):
        variants[f"d_method_{m}"] = lambda m=m: ours(run_data, args.steps, args.warmup, device, tmp, m, "disent")
    rates = interleave(variants, args.repeats)
    med = print_rates("ERM, DisEnt's MLP (100-100-16)", device, args, rates)
    a, e = med["a_biasbench_trainer"], med["e_bare_loop"]
    print(f"(a)/(e) = {a / e:.2f} (target >= 0.90)")
    step_time_vs_erm = {k[len("d_method_"):]: a / v for k, v in med.items() if k.startswith("d_method_")}
    for m, r in step_time_vs_erm.items():
        print(f"(d) {m}: step time {r:.2f}x ERM's (a)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        **provenance(), "device": str(device), "model": "mlp_disent", "profile": "disent", "steps": args.steps,
        "warmup": args.warmup, "rates": rates, "median": med, "trainer_over_bare": a / e,
        "step_time_vs_erm": step_time_vs_erm,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
