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
import itertools
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from biasbench.training.method import Batch, Method, TrainInfo, stage_at
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
    run = _Run(cfg, data, method_cls, device, checkpoint_path)
    if checkpoint_path.is_file() and not restart and run.restore(reporter):
        reporter.info(f"resuming {cfg.ratio} seed {cfg.seed} from step {run.state['step']}")
    total = run.total
    bar = reporter.bar(total=total, desc=f"{cfg.method} {cfg.ratio} s{cfg.seed}", unit="step")
    bar.update(run.state["step"])
    run.tick = time.perf_counter()
    for step in range(run.state["step"], total):
        run.step(step)
        bar.update(1)
        done = step + 1
        if done % cfg.eval_every == 0 or done == total:
            entry = run.evaluate_and_checkpoint(done)
            _set_postfix(bar, entry, cfg.protocol.headline, run.state)
    bar.close()
    return run.result(total)


class _Run:
    """One run's training state, in the three parts of the loop: restore, step, evaluate-and-checkpoint."""

    def __init__(self, cfg: RunConfig, data: RunData, method_cls: type[Method], device: torch.device,
                 checkpoint_path: Path):
        p = cfg.protocol
        self.cfg, self.data, self.device, self.checkpoint_path = cfg, data, device, checkpoint_path
        self.identity = checkpoint.identity(checkpoint_path.stem, cfg.to_dict())  # what its checkpoints carry
        self.cuda = cuda = device.type == "cuda"
        if cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (before its first use)
        seed_everything(cfg.seed)
        backend = configure_backend(cfg, device)
        self.amp = backend["amp"]
        train_split = data.train
        self.images = train_split.images.to(device)
        self.labels, self.bias, self.aligned = (
            t.to(device) for t in (train_split.labels, train_split.bias, train_split.aligned))
        model = create(p.model, data.n_classes, self.images.shape[1], p.image_size, p.width).to(device)
        # channels_last: +12 % on CPU for the Simple CNN (benchmarks/); a model without convolutions (the MLP)
        # only pays for the layout, twice (the copy in, then Flatten's copy out), at the same values.
        if not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
            backend = {**backend, "channels_last": False}
        self.backend = backend
        memory_format = torch.channels_last if backend["channels_last"] else torch.contiguous_format
        self.model = model.to(memory_format=memory_format)
        self.pre = Preprocess(p.image_size, p.augment, p.normalize, cfg.seed, device, memory_format, p.input_divisor)
        info = TrainInfo(len(train_split), data.n_classes, data.n_bias, train_split.aligned, train_split.labels,
                         train_split.bias, self.predict_train)
        self.method = method_cls(self.model, cfg, info)
        self.modules = self.method.modules()
        params = [q for m in self.modules.values() for q in m.parameters()]
        self.optimizer = make_optimizer(cfg, params, self.method.learning_rate())
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.stages = self.method.stages()
        ends = list(itertools.accumulate(st.steps for st in self.stages))
        self.total = ends[-1]
        self.stage_ends = {end: i for i, end in enumerate(ends[:-1])}  # last step of a stage -> its index
        self.stream = IndexStream(len(train_split), p.batch_size, cfg.seed, self.method.sample_weights(),
                                  device=device if cuda else None)
        self.state = {"step": 0, "history": [], "best_valid": None, "best_test": None, "train_s": 0.0,
                      "eval_s": 0.0, "images": 0}
        # CPU: the loss is read every step (a float); CUDA: summed on the device and read at evaluations only,
        # so the step loop never waits for the GPU.
        self.loss_sum, self.loss_n, self.tick = self._zero_loss(), 0, time.perf_counter()

    def _zero_loss(self):
        return torch.zeros((), dtype=torch.float64, device=self.device) if self.cuda else 0.0

    @torch.no_grad()
    def predict_train(self, fn) -> torch.Tensor:
        """fn's argmax over every training image, in row order (the train split as evaluation sees it)."""
        out, bs = [], self.cfg.protocol.eval_batch_size
        with autocast(self.device, self.amp):
            for a in range(0, len(self.data.train), bs):
                out.append(fn(self.pre(self.images[a : a + bs], train=False)).argmax(1).cpu())
        return torch.cat(out)

    def restore(self, reporter: Reporter = SILENT) -> bool:
        """Continue from the checkpoint: every state the rest of the run depends on, as it was saved. False
        (nothing restored, the file set aside) when the checkpoint is another run's or carries no identity."""
        saved = checkpoint.load(self.checkpoint_path)
        foreign = checkpoint.claim(self.checkpoint_path, saved, self.identity)
        if foreign is not None:  # another run's (or an older biasbench's) checkpoint: never resumed
            warn(reporter, foreign)
            return False
        try:
            for name, module in self.modules.items():
                module.load_state_dict(saved["modules"][name])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(saved["scheduler"])
            self.pre.load_state_dict(saved["preprocess"])
            self.method.load_state_dict(saved["method"])
            self.stream.set_weights(self.method.sample_weights(), new_epoch=False)  # the method's weights then
            self.stream.load_state_dict(saved["stream"])  # then the saved epoch's order, drawn with them
            torch.set_rng_state(saved["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # another run's or program's state
            raise UserError(f"checkpoint {self.checkpoint_path} does not fit this run ({type(exc).__name__}); "
                            "pass --restart to start this run over") from None
        self.state = saved["state"]
        return True

    def step(self, step: int) -> None:
        """One optimizer step (0-based `step`): a batch, the method's loss, backward, the method's hooks."""
        method, optimizer = self.method, self.optimizer
        for module in self.modules.values():
            module.train()
        idx = self.stream.next() if self.cuda else self.stream.next().to(self.device)
        batch = Batch(self.pre(self.images[idx], train=True), self.labels[idx], self.bias[idx], self.aligned[idx], idx)
        with autocast(self.device, self.amp):
            loss = method.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        method.before_step(step + 1, optimizer)
        optimizer.step()
        method.after_step(step + 1, optimizer)
        if step + 1 in self.stage_ends:
            i = self.stage_ends[step + 1]
            method.end_stage(self.stages[i], optimizer)
            if self.stages[i + 1].redraw:
                self.stream.set_weights(method.sample_weights(), new_epoch=True)
        self.loss_sum = self.loss_sum + (loss.detach().double() if self.cuda else float(loss.detach()))
        self.loss_n += 1
        self.state["images"] += len(idx)

    def evaluate_and_checkpoint(self, done: int) -> dict:
        """Evaluate after `done` steps, track the model selections, step the scheduler, save a checkpoint."""
        cfg, data, state, p = self.cfg, self.data, self.state, self.cfg.protocol
        if self.cuda:
            torch.cuda.synchronize(self.device)  # the step time includes the GPU's work
        now = time.perf_counter()
        state["train_s"] += now - self.tick
        entry = {
            "step": done,
            "train_loss": float(self.loss_sum) / max(self.loss_n, 1),
            "lr": self.optimizer.param_groups[0]["lr"],
            "valid": evaluate(self.method, data.valid, self.pre, cfg, data.n_classes, data.n_bias),
            "test": evaluate(self.method, data.test, self.pre, cfg, data.n_classes, data.n_bias),
        }
        self.loss_sum, self.loss_n = self._zero_loss(), 0
        self.method.on_evaluate(done, entry)
        selectable = stage_at(self.stages, done).selectable
        if not selectable:
            entry["selectable"] = False  # read-time selection skips it too (biasbench/results/selection.py)
        state["history"].append(entry)
        if selectable and _better(entry, state["best_valid"], "valid", p.selection_metric):
            state["best_valid"] = entry
        if selectable and _better(entry, state["best_test"], "test", p.headline):
            state["best_test"] = entry
        if self.scheduler is not None:
            self.scheduler.step(entry["valid"]["loss"])
        state["step"] = done
        self.tick = time.perf_counter()
        state["eval_s"] += self.tick - now
        self._save()
        return entry

    def _save(self) -> None:
        checkpoint.save(
            self.checkpoint_path,
            {
                "modules": {n: m.state_dict() for n, m in self.modules.items()},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                "stream": self.stream.state_dict(),
                "preprocess": self.pre.state_dict(),
                "method": self.method.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "state": self.state,
                "identity": self.identity,
            },
        )

    def result(self, total: int) -> dict:
        p, state = self.cfg.protocol, self.state
        cost = flops.account(self.method, self.pre(self.data.valid.images[:1], train=False), total, p.batch_size,
                             self.cfg.steps)
        return {
            "accounting": cost,
            "sparse": [engine.stats() for engine in self.method.sparse_engines()],
            "history": state["history"],
            "final": state["history"][-1],
            "best_valid": state["best_valid"],
            "best_test_oracle": state["best_test"],
            "train_seconds": state["train_s"],
            "eval_seconds": state["eval_s"],
            "images_per_second": state["images"] / max(state["train_s"], 1e-9),
            "steps_trained": total,
            "backend": self.backend,
            "params": count_params(self.model),
            **self.method.record(),
        }


def _set_postfix(bar, entry: dict, headline: str, state: dict) -> None:
    setter = getattr(bar, "set_postfix", None)
    if setter is not None:
        setter(loss=f"{entry['train_loss']:.3f}", valid=f"{entry['valid'][headline]:.3f}",
               img_s=f"{state['images'] / max(state['train_s'], 1e-9):.0f}")
