"""Sparse training as a mix-in: any method's loss, trained with the sparse engine.

`RigL = SparseTraining + ERM`, `REST = SparseTraining + reweighted ERM`: the
engine (biasbench/training/sparse.py) owns the masks and the prune-and-grow
schedule; this class only wires it to the trainer's hooks and to the run
config (density from `--density` or the protocol, schedule from the profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from biasbench.baselines.base import Method, TrainInfo
from biasbench.runconfig import RunConfig
from biasbench.training.sparse import SparseEngine, SparseSettings


def settings_for(cfg: RunConfig) -> SparseSettings:
    p = cfg.protocol
    return SparseSettings(
        density=float(cfg.density), init=p.sparse_init, growth=p.sparse_growth,
        update_frequency=p.update_frequency, drop_fraction=p.drop_fraction, drop_floor=p.drop_floor,
        update_end=p.update_end, total_steps=cfg.steps, moments=str(cfg.method_params().get("moments", "dense")),
    )


@dataclass(frozen=True)
class SparseParams:
    """The sparse methods' (RigL, REST) own numbers beyond the profile's schedule.

    moments "dense": gradients stay dense and optimizer state is never reset,
    as REST's sparselearning/core.py (`Masking.step`); "masked" is the
    earlier rule (inactive gradients zeroed, state of dropped and grown
    weights reset), whose grown weights get 3-6x the learning rate from
    Adam's bias correction (biasbench/training/sparse.py; A/B in
    biasbench/DECISIONS.md).
    """

    moments: str = "dense"


class SparseTraining(Method):
    uses_density = True
    length_free = False  # the drop fraction decays over the run's length
    Params = SparseParams

    def __init__(self, model: nn.Module, cfg: RunConfig, train: TrainInfo):
        super().__init__(model, cfg, train)
        self.engine = SparseEngine(model, settings_for(cfg), cfg.seed)

    def before_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        super().before_step(step, optimizer)
        self.engine.before_step(step)

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        super().after_step(step, optimizer)
        self.engine.after_step(step, optimizer)

    def sparse_engines(self) -> list[SparseEngine]:
        return [self.engine]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "sparse": self.engine.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.engine.load_state_dict(state["sparse"])
