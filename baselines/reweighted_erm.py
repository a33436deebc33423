"""Reweighted ERM: ERM with bias-conflicting samples upweighted by beta (REST paper, §3-4).

beta per ratio comes from the protocol (10/30/50/80 for 0.5/1/2/5 %); whether
it weights the loss or the sampling is the protocol's `reweight` (see
baselines/reweighting.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from biasbench.baselines import reweighting
from biasbench.baselines.base import Batch, Method


class ReweightedERM(Method):
    length_free = True  # no schedule: see Method.length_free
    uses_beta = True
    uses_bias_labels = True  # beta weights the samples whose bias label disagrees with their label

    def sample_weights(self) -> torch.Tensor | None:
        if self.cfg.protocol.reweight == "resample":
            return reweighting.sample_weights(self.train.aligned, self.cfg.beta)
        return None

    def loss(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch.x)
        if self.cfg.protocol.reweight == "resample":
            return F.cross_entropy(logits, batch.y)
        return reweighting.weighted_cross_entropy(logits, batch.y, batch.aligned, self.cfg.beta)


METHOD = ReweightedERM
