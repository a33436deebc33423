"""Relative difficulty: the pieces LfF and DisEnt share (Nam et al. 2020; Lee et al. 2021).

A biased model trained with generalized cross-entropy (GCE) picks up the
shortcut first; samples it finds hard relative to the debiased model are the
bias-conflicting ones, and they get the large weights
W = L_b / (L_b + L_d + 1e-8), from per-sample loss EMAs normalised by their
class-wise max. Facts from alinlab/LfF (module/loss.py, util.py, train.py)
and kakaoenterprise/Learning-Debiased-Disentangled (learner.py, util.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def gce_loss(logits: torch.Tensor, y: torch.Tensor, q: float) -> torch.Tensor:
    """Per-sample GCE in the references' form: CE x q x p_y^q with p_y detached.

    Its gradient is q x that of GCE = (1 - p_y^q) / q (both are p_y^q times
    CE's gradient, up to the factor q); we keep the references' scale since
    the DisEnt lambdas were tuned against it.
    """
    p_y = F.softmax(logits, dim=1).gather(1, y.unsqueeze(1)).squeeze(1).detach()
    return F.cross_entropy(logits, y, reduction="none") * (p_y**q) * q


class SampleLossEMA:
    """A per-sample EMA of a loss over the whole train split, as LfF's `EMA`.

    The first update of a sample stores its loss as is (LfF: the factor
    1 - alpha x updated is 1 for a sample never seen), later ones blend with
    alpha. The class-wise max is taken over every sample of the class,
    seen or not (unseen ones are 0, so they never win), as the references do.
    """

    def __init__(self, labels: torch.Tensor, n_classes: int, alpha: float):
        self.labels, self.n_classes, self.alpha = labels, n_classes, alpha
        self.value = torch.zeros(len(labels), device=labels.device)
        self.updated = torch.zeros(len(labels), device=labels.device)

    def update(self, loss: torch.Tensor, index: torch.Tensor) -> None:
        loss = loss.detach().float()
        self.value[index] = self.alpha * self.value[index] + (1 - self.alpha * self.updated[index]) * loss
        self.updated[index] = 1.0

    def class_max(self) -> torch.Tensor:
        out = torch.zeros(self.n_classes, device=self.value.device)
        return out.scatter_reduce(0, self.labels, self.value, reduce="amax", include_self=True)

    def normalized(self, index: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """EMA of the samples `index`, divided by the max EMA of their class.

        The max is clamped away from 0 only so that a class whose every loss
        underflowed to 0 gives weight 0 instead of NaN (the references divide
        by it unguarded).
        """
        return self.value[index] / self.class_max().clamp_min(1e-12)[y]

    def state_dict(self) -> dict:
        return {"value": self.value.cpu(), "updated": self.updated.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"].to(self.value.device)
        self.updated = state["updated"].to(self.updated.device)


def relative_difficulty(biased: SampleLossEMA, debiased: SampleLossEMA, index: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    """W = L_b / (L_b + L_d + 1e-8) from the class-max-normalised EMAs (LfF Eq. 1, DisEnt Eq. 1)."""
    lb, ld = biased.normalized(index, y), debiased.normalized(index, y)
    return (lb / (lb + ld + 1e-8)).detach()


def fresh_copy(model: nn.Module) -> nn.Module:
    """A second network like `model`: same architecture, device and memory format, its own initial weights.

    Both references build their two networks with two independent
    initialisations (`get_model` twice); re-initialising a copy draws from
    the seeded global RNG, so it needs nothing the trainer does not pass.
    """
    twin = copy.deepcopy(model)
    for module in twin.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return twin
