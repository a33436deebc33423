"""Benchmark: what sparse training costs on top of dense training, and which kernels to use.

(a) step time of REST (sparse engine, reweighted loss) vs ERM on the same
    model and fixed batch, interleaved (target: <= 1.15x);
(b) one topology update (drop + grow over all layers, incl. keeping |grad|),
    amortised over the protocol's update interval (target: <= 2 % of
    training time), at ΔT = 1000 (paper) and at the cpu profile's ΔT;
(c) inference forward at density 0.005 (ERK): masked dense kernels (what the
    engine does) vs true sparse kernels (CSR weight x im2col'ed input, the
    only sparse convolution PyTorch offers on CPU) — to choose by measurement.

Prints a table and writes benchmarks/results/sparse_overhead.json.

    .venv/bin/python benchmarks/sparse_overhead.py [--model simple_cnn] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from biasbench.baselines import reweighting
from biasbench.protocol import protocol_for
from biasbench.training.models import create
from biasbench.training.sparse import SparseEngine, SparseSettings

HERE = Path(__file__).resolve().parent


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make(model_name: str, image: int, width: int, device: torch.device, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create(model_name, 10, 3, image, width).to(device).to(memory_format=torch.channels_last)


def step_timer(model, engine, batch, reweight: bool, device):
    x, y, aligned = batch
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step(n: int) -> float:
        sync(device)
        t = time.perf_counter()
        for i in range(n):
            logits = model(x)
            loss = (reweighting.weighted_cross_entropy(logits, y, aligned, 30.0) if reweight
                    else F.cross_entropy(logits, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if engine is not None:
                engine.before_step(1)  # step 1 is never an update step: the per-step cost only
            opt.step()
            if engine is not None:
                engine.after_step(1, opt)
        sync(device)
        return (time.perf_counter() - t) / n

    return step, opt


def update_cost(model, engine: SparseEngine, batch, opt, device, repeats: int) -> float:
    """Seconds of one prune-and-grow round (gradient kept + drop + grow + state reset)."""
    x, y, _ = batch
    times = []
    for r in range(repeats):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        sync(device)
        t = time.perf_counter()
        engine._grad_scores = [m.weight.grad.detach().abs().clone() for _, m in engine.layers]
        engine.mask_gradients()
        engine.update(engine.settings.update_frequency, opt)
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sparse_forward(model: nn.Module, engine: SparseEngine):
    """A forward pass of `model` with every masked conv/linear done as CSR x im2col (CPU sparse kernels)."""
    csr = {}
    for (_, m), mask in zip(engine.layers, engine.masks):
        w = (m.weight * mask).detach().reshape(m.weight.shape[0], -1)
        csr[id(m)] = w.to_sparse_csr()

    def conv(m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w_ = x.shape
        cols = F.unfold(x, m.kernel_size, padding=m.padding, stride=m.stride)  # (n, c*k*k, L)
        oh = (h + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
        ow = (w_ + 2 * m.padding[1] - m.kernel_size[1]) // m.stride[1] + 1
        flat = cols.transpose(0, 1).reshape(cols.shape[1], -1)  # (c*k*k, n*L)
        out = (csr[id(m)] @ flat).reshape(m.out_channels, n, oh * ow).transpose(0, 1)
        out = out.reshape(n, m.out_channels, oh, ow)
        return out if m.bias is None else out + m.bias.view(1, -1, 1, 1)

    def linear(m: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        out = (csr[id(m)] @ x.t()).t()
        return out if m.bias is None else out + m.bias

    handles = []
    for _, m in engine.layers:
        fn = conv if isinstance(m, nn.Conv2d) else linear
        handles.append(m.register_forward_hook(lambda mod, inp, _out, fn=fn: fn(mod, inp[0].contiguous())))
    return handles


def time_forward(model, x, n: int, device) -> float:
    with torch.no_grad():
        model(x)
        sync(device)
        t = time.perf_counter()
        for _ in range(n):
            model(x)
        sync(device)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="simple_cnn", choices=("simple_cnn", "resnet18"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--density", type=float, default=0.05, help="density for (a) and (b)")
    ap.add_argument("--out", default=str(HERE / "results" / "sparse_overhead.json"))
    args = ap.parse_args()
    device = torch.device(args.device)
    dataset = "cmnist" if args.model == "simple_cnn" else "cifar10c"
    cpu_p, paper_p = protocol_for("cpu", dataset), protocol_for("paper", dataset)
    image, width = cpu_p.image_size, cpu_p.width if args.model == "resnet18" else 64
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 3, image, image, generator=g).to(device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (256,), generator=g).to(device)
    aligned = (torch.rand(256, generator=g) > 0.01).to(device)
    batch = (x, y, aligned)

    erm_model = make(args.model, image, width, device)
    rest_model = make(args.model, image, width, device)
    engine = SparseEngine(rest_model, SparseSettings(density=args.density, update_frequency=paper_p.update_frequency,
                                                     total_steps=10**6), seed=0)
    erm_step, _ = step_timer(erm_model, None, batch, False, device)
    rest_step, rest_opt = step_timer(rest_model, engine, batch, True, device)
    erm_step(2), rest_step(2)  # warm-up
    erm_t, rest_t = [], []
    for _ in range(args.repeats):  # interleaved
        erm_t.append(erm_step(args.steps))
        rest_t.append(rest_step(args.steps))
    erm_s, rest_s = statistics.median(erm_t), statistics.median(rest_t)
    upd = update_cost(rest_model, engine, batch, rest_opt, device, args.repeats)

    # (c) masked dense vs CSR kernels at density 0.005, inference forward
    dense_model = make(args.model, image, width, device).eval()
    sp_engine = SparseEngine(dense_model, SparseSettings(density=0.005), seed=0)
    kernels = {}
    if device.type == "cpu":
        contiguous = dense_model.to(memory_format=torch.contiguous_format)
        xc = x.contiguous()
        masked_t, csr_t = [], []
        for _ in range(args.repeats):
            masked_t.append(time_forward(contiguous, xc, args.steps, device))
            handles = sparse_forward(contiguous, sp_engine)
            csr_t.append(time_forward(contiguous, xc, args.steps, device))
            for h in handles:
                h.remove()
        with torch.no_grad():
            ref = contiguous(xc)
            handles = sparse_forward(contiguous, sp_engine)
            got = contiguous(xc)
            for h in handles:
                h.remove()
        kernels = {
            "density": 0.005,
            "masked_dense_forward_ms": 1000 * statistics.median(masked_t),
            "csr_forward_ms": 1000 * statistics.median(csr_t),
            "max_abs_diff": float((ref - got).abs().max()),
        }

    from provenance import provenance

    result = {
        **provenance(),
        "model": args.model,
        "image_size": image,
        "batch": 256,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else
        f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "density": args.density,
        "erm_step_ms": 1000 * erm_s,
        "rest_step_ms": 1000 * rest_s,
        "rest_over_erm": rest_s / erm_s,
        "update_ms": 1000 * upd,
        "update_share": {
            f"paper (every {paper_p.update_frequency})": upd / (paper_p.update_frequency * rest_s),
            f"cpu (every {cpu_p.update_frequency})": upd / (cpu_p.update_frequency * rest_s),
        },
        "kernels": kernels,
        "repeats": args.repeats,
        "steps_per_repeat": args.steps,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"{args.model} {image}x{image}, batch 256, {result['device']}, density {args.density}")
    print(f"{'ERM step':<34}{result['erm_step_ms']:>10.1f} ms")
    print(f"{'REST step (masks + reweighting)':<34}{result['rest_step_ms']:>10.1f} ms   {result['rest_over_erm']:.3f}x ERM")
    print(f"{'one topology update':<34}{result['update_ms']:>10.1f} ms")
    for k, v in result["update_share"].items():
        print(f"{'  amortised, ' + k:<34}{100 * v:>10.2f} % of training time")
    if kernels:
        print(f"{'forward @0.005, masked dense':<34}{kernels['masked_dense_forward_ms']:>10.1f} ms")
        print(f"{'forward @0.005, CSR x im2col':<34}{kernels['csr_forward_ms']:>10.1f} ms   "
              f"(max |diff| {kernels['max_abs_diff']:.1e})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
