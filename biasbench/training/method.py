"""The interface between the trainer and a method (methods import it as biasbench.baselines.base).

A method sees a model, batches and the resolved run config; it never sees
files or the command line. The trainer owns the loop, the optimizer,
evaluation and checkpoints; a method returns the loss of a batch and may
hook in after the optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from biasbench.runconfig import RunConfig


@dataclass
class Batch:
    x: torch.Tensor  # preprocessed inputs
    y: torch.Tensor  # target labels
    bias: torch.Tensor  # bias labels
    aligned: torch.Tensor  # bool: bias-aligned sample
    index: torch.Tensor  # row indices into the train split (for per-sample state)


@dataclass
class TrainInfo:
    """What a method may know about the training split."""

    n: int
    n_classes: int
    n_bias: int
    aligned: torch.Tensor  # (n,) bool, on CPU
    labels: torch.Tensor  # (n,) int64, on CPU
    bias: torch.Tensor | None = None  # (n,) int64, on CPU: for methods that train with bias labels (GroupDRO)
    # predict(fn): fn's argmax over the whole train split, in row order, in eval mode (JTT's error set)
    predict: Callable[[Callable[[torch.Tensor], torch.Tensor]], torch.Tensor] | None = None


class Method:
    uses_beta = False  # reads cfg.beta (reweighting)
    uses_density = False  # reads cfg.density (sparse training)
    default_density = True  # without --density, the profile's density (False: the method decides, cfg.density None)
    uses_bias_labels = False  # trains with ground-truth bias labels (leaderboards' bias_labels column)
    # Nothing in a run depends on its total length (no schedule, no stage shares): the first B steps of a
    # longer run are the B-step run, so a budget curve may read shorter budgets from one long run.
    length_free = False
    Params = None  # the dataclass of the method's own numbers (beside the method), or None

    @classmethod
    def own_params(cls, profile: str, dataset, protocol) -> object | None:
        """The method's own numbers under a profile and dataset (a `Params` instance): recorded in its
        configs (`method_params`), so they are part of its run ids. Default: `Params()` as written.
        `dataset` is the dataset's registry info (biasbench.datasets.DatasetInfo: its family, image size,
        channels), never its name: numbers per dataset are numbers per family. A family without a number
        is a UserError (one line), never a KeyError."""
        return cls.Params() if cls.Params is not None else None

    def __init__(self, model: nn.Module, cfg: RunConfig, train: TrainInfo):
        self.model, self.cfg, self.train = model, cfg, train

    def modules(self) -> dict[str, nn.Module]:
        """Everything the optimizer trains and checkpoints save."""
        return {"model": self.model}

    def sample_weights(self) -> torch.Tensor | None:
        """Per-sample draw weights for the batch sampler (None: uniform permutations)."""
        return None

    def resampled(self, step: int) -> bool:
        """True right after the step at which `sample_weights()` changed (the trainer then redraws from a new
        epoch); JTT's upsampling starts so."""
        return False

    def loss(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def before_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """Called after backward, before the optimizer step (gradient surgery, masking)."""

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """Called after each optimizer step (sparse masks, EMAs, schedules)."""

    def on_evaluate(self, step: int, entry: dict) -> None:
        """Called with each evaluation's entry (step, train_loss, valid and test metrics)."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def learning_rate(self) -> float | None:
        """The method's own learning rate where its reference sets one apart from the profile's; None: the profile's."""
        return None

    @classmethod
    def selectable_entry(cls, record: dict, entry: dict) -> bool:
        """Whether a recorded evaluation may be picked when a table is read (biasbench/results/selection.py);
        the record-side twin of `selectable`."""
        return bool(entry.get("selectable", True))

    def selectable(self, step: int) -> bool:
        """Whether the evaluation after `step` may be picked by model selection (MRM: only its final stage's)."""
        return True

    def total_steps(self) -> int:
        """Optimizer steps the run trains: the common budget, or more for a method whose final model
        trains the common budget after earlier stages (MRM)."""
        return self.cfg.steps

    def dense_steps(self) -> int:
        """Steps whose training FLOPs are dense whatever the final masks (MRM's stages 1-2)."""
        return 0

    def sparse_engines(self) -> list:
        """The sparse engines masking this method's modules (FLOPs and parameter accounting)."""
        return []

    def training_forward(self, x: torch.Tensor) -> None:
        """The forward passes one training step makes on inputs x, without side effects.

        Only for FLOPs accounting (each of these is also back-propagated);
        methods whose modules do not all take images override it.
        """
        for module in self.modules().values():
            module(x)

    def record(self) -> dict:
        """What the run record keeps of the method beyond its evaluations (plain values; keys its own, such as
        MRM's per-stage density): merged into the trainer's results at the end of a run."""
        return {}

    def state_dict(self) -> dict:
        """Method state beyond the modules' weights (tensors and plain values only)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
