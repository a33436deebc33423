"""The interface between the trainer and a method (methods import it as biasbench.baselines.base).

A method sees a model, batches and the resolved run config; it never sees
files or the command line. The trainer owns the loop, the optimizer,
evaluation and checkpoints; a method returns the loss of a batch and may
hook in after the optimizer step. A method trained in several stages (JTT,
MRM) declares them (`plan_stages`); the trainer runs them in order, calls
`end_stage` between them, and only a selectable stage's evaluations may be
picked, in training and when a record is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from biasbench.runconfig import RunConfig


@dataclass(frozen=True)
class Stage:
    """One stage of a method's training, declared by the method and run by the trainer."""

    name: str
    steps: int  # optimizer steps
    selectable: bool = True  # its evaluations may be picked by model selection (the method's final model)
    dense: bool = False  # trained dense whatever the final masks (training-FLOPs accounting: MRM's stages 1-2)
    redraw: bool = False  # as it begins, the batch sampler starts a new epoch with the method's sample weights


def stage_at(stages: tuple[Stage, ...], step: int) -> Stage:
    """The stage that optimizer step `step` (1-based) belongs to; the last one for any later step."""
    end = 0
    for stage in stages:
        end += stage.steps
        if step <= end:
            return stage
    return stages[-1]


def selectable_entries(cls: type["Method"], record: dict) -> list[dict]:
    """A record's evaluations that model selection may pick: those the trainer did not flag, in a selectable
    stage of the stages its recorded config plans (records written before the flag carry only the config)."""
    entries, c = record.get("history") or [], record.get("config") or {}
    try:
        stages = cls.plan_stages(int(c["steps"]), c.get("method_params") or {}, None,
                                 int((c.get("protocol") or {}).get("batch_size", 1)))
    except (KeyError, TypeError, ValueError):  # a config without them (a hand-made record): the flags alone
        stages = None
    return [e for e in entries if e.get("selectable", True)
            and (stages is None or stage_at(stages, int(e["step"])).selectable)]


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

    @classmethod
    def plan_stages(cls, steps: int, params: dict, n_train: int | None, batch_size: int) -> tuple[Stage, ...] | None:
        """The run's stages from its config: one `train` stage of the common budget unless the method trains
        in several. `n_train` is None when a recorded config is read; None back: the stages depend on it and
        the record's `selectable` flags alone decide (JTT's train-pass T is at least one epoch)."""
        return (Stage("train", steps),)

    def stages(self) -> tuple[Stage, ...]:
        """This run's stages (what the trainer runs)."""
        return self.plan_stages(self.cfg.steps, self.cfg.method_params(), self.train.n, self.cfg.protocol.batch_size)

    def end_stage(self, stage: Stage, optimizer: torch.optim.Optimizer | None) -> None:
        """Called after the last step of every stage but the last, after `after_step` (JTT: find the error
        set and restart from w0; MRM: fix the mask and restart from w0)."""

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
