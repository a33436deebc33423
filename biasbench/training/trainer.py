"""The training loop every method shares.

Reads top to bottom like the algorithm: draw a batch of indices, preprocess
on the device, the method's loss, an optimizer step, the method's hook;
every `eval_every` steps evaluate on valid and test, track the model
selections, checkpoint. A checkpoint holds everything the rest of the run
depends on (weights, optimizer, scheduler, sampler position, augmentation and
global RNG states, method state, history), so a killed run resumes to the
same final numbers as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from biasbench.training.method import Batch, Method, TrainInfo
from biasbench.data import TensorSplit
from biasbench.errors import UserError
from biasbench.progress import SILENT, Reporter, warn
from biasbench.runconfig import RunConfig
from biasbench.training import checkpoint, flops
from biasbench.training.batches import IndexStream, Preprocess
from biasbench.training.metrics import summarize
from biasbench.training.models import count_params, create


@dataclass
class RunData:
    train: TensorSplit
    valid: TensorSplit
    test: TensorSplit
    n_classes: int
    n_bias: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def configure_backend(cfg: RunConfig, device: torch.device) -> dict:
    """Set, and return for the record, the numerics a run trains with.

    CUDA: cuDNN deterministic unless the run asks for `cudnn_benchmark` (then
    autotuned, not bit-reproducible); TF32 matmuls off, so fp32 is fp32;
    `amp` (bf16 autocast) only when the run's config says so. Each is a
    recorded choice, and the ones that change numbers are in the run id.
    """
    amp = cfg.overrides.get("amp")
    channels_last = bool(cfg.overrides.get("channels_last", True))
    if device.type != "cuda":
        if amp is not None:
            raise ValueError("--amp needs a CUDA device")
        return {"device_type": device.type, "amp": None, "channels_last": channels_last}
    benchmark = bool(cfg.overrides.get("cudnn_benchmark", False))
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = not benchmark
    torch.use_deterministic_algorithms(not benchmark, warn_only=True)  # speed was asked for: no slow paths
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return {"device_type": "cuda", "amp": amp, "channels_last": channels_last, "cudnn_benchmark": benchmark,
            "cudnn_deterministic": not benchmark, "tf32": False}


def autocast(device: torch.device, amp: str | None):
    """bf16 autocast on CUDA when asked; otherwise a no-op context."""
    if amp == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(cfg: RunConfig, params, lr: float | None = None) -> torch.optim.Optimizer:
    """The profile's optimizer; `lr` replaces the profile's where a method has its own (DisEnt on CIFAR-10-C)."""
    p = cfg.protocol
    lr = p.lr if lr is None else lr
    if p.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(p.adam_betas), weight_decay=p.weight_decay)
    if p.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=p.momentum, weight_decay=p.weight_decay)
    raise ValueError(f"unknown optimizer {p.optimizer!r}")


def make_scheduler(cfg: RunConfig, optimizer: torch.optim.Optimizer):
    p = cfg.protocol
    if p.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=p.plateau_factor, patience=p.plateau_patience
        )
    return None


@torch.no_grad()
def evaluate(method: Method, split: TensorSplit, pre: Preprocess, cfg: RunConfig, n_classes: int, n_bias: int) -> dict:
    for module in method.modules().values():
        module.eval()
    preds, loss_sum = [], 0.0
    bs = cfg.protocol.eval_batch_size
    labels = split.labels.to(pre.device)
    on_cuda = pre.device.type == "cuda"
    if on_cuda:  # summed on the device, read once: no host sync per batch
        loss_sum = torch.zeros((), dtype=torch.float64, device=pre.device)
    with autocast(pre.device, cfg.overrides.get("amp")):
        for a in range(0, len(split), bs):
            logits = method.predict(pre(split.images[a : a + bs], train=False))
            batch_loss = F.cross_entropy(logits.float(), labels[a : a + bs], reduction="sum")
            loss_sum = loss_sum + (batch_loss.double() if on_cuda else float(batch_loss))
            preds.append(logits.argmax(1))
    return summarize(torch.cat(preds), split.labels, split.bias, split.aligned, float(loss_sum), n_classes, n_bias)


def _better(new: dict, old: dict | None, split: str, metric: str) -> bool:
    return old is None or new[split][metric] > old[split][metric]


def train(
    cfg: RunConfig,
    data: RunData,
    method_cls: type[Method],
    device: torch.device,
    checkpoint_path: Path,
    reporter: Reporter = SILENT,
    restart: bool = False,
) -> dict:
    """Train one run to the end (resuming from `checkpoint_path` if present); returns its results."""
    p = cfg.protocol
    cuda = device.type == "cuda"
    if cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (before its first use)
    seed_everything(cfg.seed)
    backend = configure_backend(cfg, device)
    amp = backend["amp"]
    train_split = data.train
    images = train_split.images.to(device)
    labels, bias, aligned = (t.to(device) for t in (train_split.labels, train_split.bias, train_split.aligned))
    model = create(p.model, data.n_classes, images.shape[1], p.image_size, p.width).to(device)
    # channels_last: +12 % on CPU for the Simple CNN (benchmarks/); a model without convolutions (the MLP) only
    # pays for the layout, twice (the copy in, then Flatten's copy out), at the same values.
    if not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        backend = {**backend, "channels_last": False}
    memory_format = torch.channels_last if backend["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    pre = Preprocess(p.image_size, p.augment, p.normalize, cfg.seed, device, memory_format, p.input_divisor)

    @torch.no_grad()
    def predict_train(fn) -> torch.Tensor:
        """fn's argmax over every training image, in row order (the train split as evaluation sees it)."""
        out = []
        with autocast(device, amp):
            for a in range(0, len(train_split), p.eval_batch_size):
                out.append(fn(pre(images[a : a + p.eval_batch_size], train=False)).argmax(1).cpu())
        return torch.cat(out)

    info = TrainInfo(len(train_split), data.n_classes, data.n_bias, train_split.aligned, train_split.labels,
                     train_split.bias, predict_train)
    method = method_cls(model, cfg, info)
    modules = method.modules()
    params = [q for m in modules.values() for q in m.parameters()]
    optimizer = make_optimizer(cfg, params, method.learning_rate())
    scheduler = make_scheduler(cfg, optimizer)
    stream = IndexStream(len(train_split), p.batch_size, cfg.seed, method.sample_weights(),
                         device=device if cuda else None)

    state = {"step": 0, "history": [], "best_valid": None, "best_test": None, "train_s": 0.0, "eval_s": 0.0,
             "images": 0}
    me = checkpoint.identity(checkpoint_path.stem, cfg.to_dict())
    saved = checkpoint.load(checkpoint_path) if checkpoint_path.is_file() and not restart else None
    foreign = checkpoint.claim(checkpoint_path, saved, me) if saved is not None else None
    if foreign is not None:  # another run's (or an older biasbench's) checkpoint: never resumed
        warn(reporter, foreign)
        saved = None
    if saved is not None:
        try:
            for name, module in modules.items():
                module.load_state_dict(saved["modules"][name])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            pre.load_state_dict(saved["preprocess"])
            method.load_state_dict(saved["method"])
            stream.set_weights(method.sample_weights(), new_epoch=False)  # the method's weights at that point
            stream.load_state_dict(saved["stream"])  # then the saved epoch's order, drawn with them
            torch.set_rng_state(saved["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # another run's or program's state
            raise UserError(f"checkpoint {checkpoint_path} does not fit this run ({type(exc).__name__}); "
                            "pass --restart to start this run over") from None
        state = saved["state"]
        reporter.info(f"resuming {cfg.ratio} seed {cfg.seed} from step {state['step']}")

    total = method.total_steps()
    bar = reporter.bar(total=total, desc=f"{cfg.method} {cfg.ratio} s{cfg.seed}", unit="step")
    bar.update(state["step"])
    # CPU: the loss is read every step (a float, as it always was); CUDA: summed on the device and read at
    # evaluations only, so the step loop never waits for the GPU.
    zero_loss = (lambda: torch.zeros((), dtype=torch.float64, device=device)) if cuda else (lambda: 0.0)
    loss_sum, loss_n = zero_loss(), 0
    tick = time.perf_counter()
    for step in range(state["step"], total):
        for module in modules.values():
            module.train()
        idx = stream.next() if cuda else stream.next().to(device)
        batch = Batch(pre(images[idx], train=True), labels[idx], bias[idx], aligned[idx], idx)
        with autocast(device, amp):
            loss = method.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        method.before_step(step + 1, optimizer)
        optimizer.step()
        method.after_step(step + 1, optimizer)
        if method.resampled(step + 1):
            stream.set_weights(method.sample_weights(), new_epoch=True)
        loss_sum = loss_sum + (loss.detach().double() if cuda else float(loss.detach()))
        loss_n += 1
        state["images"] += len(idx)
        bar.update(1)
        done = step + 1
        if done % cfg.eval_every == 0 or done == total:
            if cuda:
                torch.cuda.synchronize(device)  # the step time includes the GPU's work
            now = time.perf_counter()
            state["train_s"] += now - tick
            entry = {
                "step": done,
                "train_loss": float(loss_sum) / max(loss_n, 1),
                "lr": optimizer.param_groups[0]["lr"],
                "valid": evaluate(method, data.valid, pre, cfg, data.n_classes, data.n_bias),
                "test": evaluate(method, data.test, pre, cfg, data.n_classes, data.n_bias),
            }
            loss_sum, loss_n = zero_loss(), 0
            method.on_evaluate(done, entry)
            selectable = method.selectable(done)
            if not selectable:
                entry["selectable"] = False  # read-time selection skips it too (biasbench/results/selection.py)
            state["history"].append(entry)
            if selectable and _better(entry, state["best_valid"], "valid", p.selection_metric):
                state["best_valid"] = entry
            if selectable and _better(entry, state["best_test"], "test", p.headline):
                state["best_test"] = entry
            if scheduler is not None:
                scheduler.step(entry["valid"]["loss"])
            state["step"] = done
            tick = time.perf_counter()
            state["eval_s"] += tick - now
            _set_postfix(bar, entry, p.headline, state)
            checkpoint.save(
                checkpoint_path,
                {
                    "modules": {n: m.state_dict() for n, m in modules.items()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else {},
                    "stream": stream.state_dict(),
                    "preprocess": pre.state_dict(),
                    "method": method.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "state": state,
                    "identity": me,
                },
            )
    bar.close()
    cost = flops.account(method, pre(data.valid.images[:1], train=False), total, p.batch_size, cfg.steps)
    return {
        "accounting": cost,
        "sparse": [engine.stats() for engine in method.sparse_engines()],
        "history": state["history"],
        "final": state["history"][-1],
        "best_valid": state["best_valid"],
        "best_test_oracle": state["best_test"],
        "train_seconds": state["train_s"],
        "eval_seconds": state["eval_s"],
        "images_per_second": state["images"] / max(state["train_s"], 1e-9),
        "steps_trained": total,
        "backend": backend,
        "params": count_params(model),
        **method.record(),
    }


def _set_postfix(bar, entry: dict, headline: str, state: dict) -> None:
    setter = getattr(bar, "set_postfix", None)
    if setter is not None:
        setter(loss=f"{entry['train_loss']:.3f}", valid=f"{entry['valid'][headline]:.3f}",
               img_s=f"{state['images'] / max(state['train_s'], 1e-9):.0f}")
