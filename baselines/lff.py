"""Learning from Failure (Nam et al., NeurIPS 2020): a biased model shows which samples to upweight.

Two networks of the protocol's model train side by side on the same
batches: the biased one with GCE (it amplifies the easy shortcut), the
debiased one with CE weighted per sample by the relative difficulty
W = L_b / (L_b + L_d), from per-sample loss EMAs normalised by their class
max (baselines/difficulty.py). Evaluation and the leaderboard use the
debiased model. Facts from alinlab/LfF:train.py: both losses in the EMAs are
plain CE; the EMAs are updated with the batch before the weights are read;
the step minimises mean(GCE_b) + mean(W x CE_d). One optimizer over both
networks is the same as LfF's two (Adam is per-parameter, same settings).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from biasbench.baselines.base import Batch, Method, TrainInfo
from biasbench.baselines.difficulty import SampleLossEMA, fresh_copy, gce_loss, relative_difficulty
from biasbench.runconfig import RunConfig


@dataclass(frozen=True)
class LfFParams:
    """Learning from Failure's own numbers (alinlab/LfF:train.py, module/loss.py, util.py).

    q 0.7 (GeneralizedCELoss, as train.py builds it) and per-sample loss EMA
    alpha 0.7 (train.py). What LfF also sets but the common protocol decides
    for every method alike: Adam lr 1e-3, wd 0, no schedule, an MLP on CMNIST,
    100 epochs (here: the profile's optimizer, lr, model and budget).
    """

    q: float = 0.7
    ema_alpha: float = 0.7


class LfF(Method):
    length_free = True  # no schedule: see Method.length_free
    Params = LfFParams

    def __init__(self, model: nn.Module, cfg: RunConfig, train: TrainInfo):
        super().__init__(model, cfg, train)
        params = cfg.method_params()
        self.q = float(params["q"])
        self.biased = fresh_copy(model)
        device = next(model.parameters()).device
        labels = train.labels.to(device)
        self.ema_b = SampleLossEMA(labels, train.n_classes, float(params["ema_alpha"]))
        self.ema_d = SampleLossEMA(labels, train.n_classes, float(params["ema_alpha"]))

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "biased": self.biased}

    def loss(self, batch: Batch) -> torch.Tensor:
        logits_b, logits_d = self.biased(batch.x), self.model(batch.x)
        ce_b = F.cross_entropy(logits_b, batch.y, reduction="none")
        ce_d = F.cross_entropy(logits_d, batch.y, reduction="none")
        self.ema_b.update(ce_b, batch.index)
        self.ema_d.update(ce_d, batch.index)
        weights = relative_difficulty(self.ema_b, self.ema_d, batch.index, batch.y)
        return gce_loss(logits_b, batch.y, self.q).mean() + (ce_d * weights).mean()

    def state_dict(self) -> dict:
        return {"ema_b": self.ema_b.state_dict(), "ema_d": self.ema_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.ema_b.load_state_dict(state["ema_b"])
        self.ema_d.load_state_dict(state["ema_d"])


METHOD = LfF
