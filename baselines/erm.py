"""ERM: plain cross-entropy on the biased training set (the baseline every table starts from)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from biasbench.baselines.base import Batch, Method


class ERM(Method):
    length_free = True  # no schedule: see Method.length_free

    def loss(self, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(self.model(batch.x), batch.y)


METHOD = ERM
