"""Benchmark: training img/s of the protocol's models on whatever device runs it, and projected wall times.

Models: the Simple CNN (CMNIST, 28 px), the MLP (LfF/DisEnt CMNIST, 28 px),
REST's ResNet-18 (ImageNet stem, width 64) at 32 px (CIFAR-10-C) and 128 px
(BFFHQ in `paper`). Each is timed as a bare step (forward, backward, Adam)
on a fixed random batch, after warm-up, with a device synchronisation
before the clock is read; fp32, and bf16 autocast on CUDA.

Projections (serial, one run at a time; `paper_grid.py` measures the
concurrent case on the GPU):
- the `paper` CMNIST grid: 7 methods x 4 ratios x 3 seeds at 100 epochs of
  55,000 images (21,500 steps of 256), in Simple-CNN step units: ERM,
  reweighted ERM, RigL, REST 1 each (masked dense compute), LfF and DisEnt 2
  (two networks; benchmarks/results/train_throughput_methods.json), MRM 3
  (three stages of one budget each), plus evaluation (valid + test, 15,000
  images forward every 500 steps, a third of a step per image);
- one CIFAR-10-C `paper` run: 100 epochs of 45,000 images (17,600 steps).

    python3 benchmarks/device/throughput.py [--device cuda] [--steps 30] [--out benchmarks/results/device_throughput.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

CASES = (  # name, model, image size, batch
    ("simple_cnn_28", "simple_cnn", 28, 256),
    ("mlp_28", "mlp", 28, 256),
    ("resnet18_32", "resnet18", 32, 256),
    ("resnet18_cifar_32", "resnet18_cifar", 32, 256),  # the CIFAR stem, for the cost of the earlier network
    ("resnet18_128", "resnet18", 128, 256),
)
CMNIST_STEPS = 100 * math.ceil(55_000 / 256)  # 21,500
CIFAR_STEPS = 100 * math.ceil(45_000 / 256)  # 17,600
METHOD_UNITS = {"erm": 1, "reweighted_erm": 1, "rigl": 1, "rest": 1, "lff": 2, "disent": 2, "mrm": 3}
EVAL_IMAGES, EVAL_EVERY, EVAL_COST = 15_000, 500, 1 / 3  # forward only: ~a third of a training step per image


def step_rate(create, model_name: str, size: int, batch: int, device: torch.device, steps: int, warmup: int,
              amp: bool) -> float:
    torch.manual_seed(0)
    model = create(model_name, 10, 3, size, 64).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def step():
        with ctx():
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return batch * steps / (time.perf_counter() - t)


def projections(rates: dict[str, float]) -> dict:
    cnn = rates["simple_cnn_28"]
    step_s = 256 / cnn
    eval_units = CMNIST_STEPS / EVAL_EVERY * EVAL_IMAGES / 256 * EVAL_COST
    per_ratio_seed = sum(METHOD_UNITS.values()) * CMNIST_STEPS + len(METHOD_UNITS) * eval_units
    grid_s = 4 * 3 * per_ratio_seed * step_s
    cifar_evals = CIFAR_STEPS / EVAL_EVERY
    cifar_s = (CIFAR_STEPS + cifar_evals * EVAL_IMAGES / 256 * EVAL_COST) * 256 / rates["resnet18_32"]
    return {"cmnist_paper_grid_serial_min": grid_s / 60, "cmnist_paper_run_erm_min": (CMNIST_STEPS + eval_units)
            * step_s / 60, "cifar10c_paper_run_erm_min": cifar_s / 60}


def commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 30 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 10 on CUDA, 1 on CPU)")
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "device_throughput.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (30 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    if cuda:
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    from biasbench.training.models import create

    rates: dict[str, float] = {}
    print(f"{'case':<16}{'batch':>7}{'fp32 img/s':>13}" + (f"{'bf16 img/s':>13}" if cuda else ""))
    for name, model, size, batch in CASES:
        if args.only and name not in args.only:
            continue
        rates[name] = step_rate(create, model, size, batch, device, steps, warmup, amp=False)
        line = f"{name:<16}{batch:>7}{rates[name]:>13.0f}"
        if cuda:
            rates[name + "_bf16"] = step_rate(create, model, size, batch, device, steps, warmup, amp=True)
            line += f"{rates[name + '_bf16']:>13.0f}"
        print(line, flush=True)
    proj = projections(rates) if {"simple_cnn_28", "resnet18_32"} <= set(rates) else {}
    for k, v in proj.items():
        print(f"{k}: {v:,.1f}")
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.machine()})"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "device_throughput", "commit": commit(), "torch": torch.__version__, "device": name,
        "threads": torch.get_num_threads(), "load": os.getloadavg(), "steps": steps, "warmup": warmup,
        "img_per_s": rates, "projections": proj,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
