"""Upweighting bias-conflicting samples, shared by reweighted ERM and REST.

Two forms, chosen by the protocol's `reweight`:
- "loss" (REST paper, §3): the objective is E[beta_g * loss]; a batch
  estimates it as the plain mean of w_i * loss_i with w_i = beta for
  bias-conflicting and 1 for aligned samples. Not divided by sum(w): that is
  the expectation as written, and it keeps a batch's gradient proportional
  to how many conflicting samples it holds.
- "resample" (REST's released code, data/dro_dataset.py): conflicting samples
  are drawn beta times as often (with replacement) and the loss is plain CE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_weights(aligned: torch.Tensor, beta: float) -> torch.Tensor:
    """beta for bias-conflicting samples, 1 for aligned ones."""
    return torch.where(aligned, torch.ones((), dtype=torch.float64), torch.full((), float(beta), dtype=torch.float64))


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor, aligned: torch.Tensor, beta: float) -> torch.Tensor:
    per_sample = F.cross_entropy(logits, y, reduction="none")
    weights = torch.where(aligned, torch.ones_like(per_sample), torch.full_like(per_sample, beta))
    return (weights * per_sample).mean()
