"""The sparse training engine: masks, layer-wise densities, prune-and-grow.

Used by every sparse method (RigL, REST, MRM's subnetworks); a method owns one
`SparseEngine` and calls it from its trainer hooks. Implementation: masked
dense tensors (a weight is sparse because it is exactly zero and its mask is
False). `benchmarks/sparse_overhead.py` measured that against true sparse
kernels and chose this (see benchmarks/README.md).

Decisions (and where they come from):
- What is sparse: the weights of every Conv2d and Linear layer, the first
  conv and the classifier included; biases and BatchNorm stay dense. This is
  what REST's released code does (its `sparselearning` core masks all conv and
  linear weights and removes BN and biases); RigL keeps the first layer dense
  on ImageNet, which is a choice for 224x224 inputs, not REST's. ERK gives
  small layers (the first conv, the classifier) high densities anyway.
- Layer densities: ERK (RigL, erk_power_scale 1) or uniform. Each layer keeps
  an exact number of active weights, round(density_l x size_l), for the whole
  run; so the global density is the target within half a weight per layer.
- Updates (`update`): per layer, drop the k = round(d(t) x active) active
  weights of smallest |w|, grow k among the then-inactive positions by
  largest |gradient| (RigL) or uniformly at random (SET). Grown weights start
  at zero. d(t) decays by a cosine from d0 to `floor` over the update
  period, and updates stop after `end` x total steps.
- Optimizer state (`moments`): "dense" (default) leaves every gradient dense
  and never resets optimizer state, as REST's `sparselearning/core.py` does
  (`Masking.step`: optimizer step, then `apply_mask`; no gradient masking,
  no moment reset). A grown weight then takes an ordinary Adam step from
  moments that have followed its gradient all along. "masked" zeroes inactive
  gradients and resets the state of dropped and grown weights; under Adam a
  grown weight then starts from zero moments while the tensor's step count
  keeps running, so bias correction no longer matches and its first updates
  are ~(1 - b1) / sqrt(1 - b2) = 3.2x the learning rate (more over the next
  steps): kept only to reproduce earlier records and for the A/B in
  biasbench/DECISIONS.md.
- Exactness: after every optimizer step `apply` multiplies weights by their
  mask, so an inactive weight is exactly zero whatever its optimizer state;
  only growth revives a position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from biasbench import rng

PRUNABLE = (nn.Conv2d, nn.Linear)
MOMENT_RULES = ("dense", "masked")


@dataclass(frozen=True)
class SparseSettings:
    density: float  # global: active prunable weights / prunable weights
    init: str = "erk"  # "erk" or "uniform"
    growth: str = "gradient"  # "gradient" (RigL) or "random" (SET)
    update_frequency: int = 1000  # steps between topology updates (0: static masks)
    drop_fraction: float = 0.3  # d0
    drop_floor: float = 0.0  # d(t) never goes below this
    update_end: float = 0.75  # updates stop after this fraction of the total steps
    total_steps: int = 1
    moments: str = "dense"  # "dense" (REST's sparselearning) or "masked" (see the module docstring)

    def __post_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if self.init not in ("erk", "uniform"):
            raise ValueError(f"unknown sparse init {self.init!r}")
        if self.growth not in ("gradient", "random"):
            raise ValueError(f"unknown growth {self.growth!r}")
        if self.moments not in MOMENT_RULES:
            raise ValueError(f"unknown optimizer-state rule {self.moments!r}; choose one of {', '.join(MOMENT_RULES)}")


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Conv2d/Linear, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


def erk_scores(shapes: list[torch.Size]) -> list[float]:
    """ERK's raw density per layer: sum of the weight's dims / product of them."""
    return [sum(s) / math.prod(s) for s in shapes]


def layer_densities(shapes: list[torch.Size], density: float, init: str) -> list[float]:
    """Per-layer densities whose size-weighted mean is `density`.

    ERK (RigL, Evci et al. 2020, Appendix): density_l = eps x raw_l, with eps
    solved so the total matches; a layer whose density would exceed 1 is made
    dense and eps is solved again for the rest.
    """
    sizes = [math.prod(s) for s in shapes]
    if init == "uniform" or density >= 1.0:
        return [density] * len(shapes)
    raw = erk_scores(shapes)
    dense: set[int] = set()
    while True:
        budget = density * sum(sizes) - sum(sizes[i] for i in dense)
        weighted = sum(raw[i] * sizes[i] for i in range(len(sizes)) if i not in dense)
        eps = budget / weighted
        over = {i for i in range(len(sizes)) if i not in dense and eps * raw[i] > 1.0}
        if not over:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(sizes))]
        dense |= over


def layer_counts(shapes: list[torch.Size], density: float, init: str) -> list[int]:
    """Active weights per layer: `layer_densities` rounded to whole weights (within 1/2 weight a layer)."""
    return [round(d * math.prod(s)) for d, s in zip(layer_densities(shapes, density, init), shapes)]


def _seeded_scores(shape: torch.Size, seed: int, stream: str) -> torch.Tensor:
    """Uniform scores in [0, 1) from counter-based hashes: the same on every machine and device."""
    n = math.prod(shape)
    return torch.from_numpy(rng.uniform(seed, stream, np.arange(n))).reshape(shape)


def _topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the k largest entries (torch.topk: O(n), deterministic on a given device)."""
    flat = scores.flatten()
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.view_as(scores)


class SparseEngine:
    """Masks for one model's prunable weights, and the prune-and-grow schedule."""

    def __init__(self, model: nn.Module, settings: SparseSettings, seed: int,
                 masks: list[torch.Tensor] | None = None):
        """`masks` (one bool tensor per prunable weight, `prunable_layers` order): start from these
        instead of the seeded init; layer counts are theirs (MRM builds its subnetwork's engine so)."""
        self.settings, self.seed = settings, seed
        self.layers = prunable_layers(model)
        if not self.layers:
            raise ValueError("model has no Conv2d/Linear layers to sparsify")
        shapes = [m.weight.shape for _, m in self.layers]
        self.masks: list[torch.Tensor] = []
        if masks is not None:
            if [tuple(t.shape) for t in masks] != [tuple(s) for s in shapes]:
                raise ValueError("masks must match the prunable weights' shapes, in prunable_layers order")
            self.masks = [t.to(device=m.weight.device, dtype=torch.bool).clone() for t, (_, m) in zip(masks, self.layers)]
            self.counts = [int(t.sum()) for t in self.masks]
            self.densities = [c / t.numel() for c, t in zip(self.counts, self.masks)]
        else:
            self.densities = layer_densities(shapes, settings.density, settings.init)
            self.counts = layer_counts(shapes, settings.density, settings.init)
            for i, ((_, m), k) in enumerate(zip(self.layers, self.counts)):
                scores = _seeded_scores(m.weight.shape, seed, f"sparse-init/{i}").to(m.weight.device)
                self.masks.append(_topk_mask(scores, k))
        self.updates = 0  # topology updates done so far
        self._grad_scores: list[torch.Tensor] | None = None
        self.apply()

    # -- exactness ---------------------------------------------------------
    @torch.no_grad()
    def apply(self) -> None:
        """Zero every inactive weight."""
        for (_, m), mask in zip(self.layers, self.masks):
            m.weight.mul_(mask)

    @torch.no_grad()
    def mask_gradients(self) -> None:
        for (_, m), mask in zip(self.layers, self.masks):
            if m.weight.grad is not None:
                m.weight.grad.mul_(mask)

    # -- schedule ----------------------------------------------------------
    def last_update_step(self) -> int:
        return int(self.settings.update_end * self.settings.total_steps)

    def is_update_step(self, step: int) -> bool:
        f = self.settings.update_frequency
        return f > 0 and step % f == 0 and step <= self.last_update_step()

    def drop_fraction(self, step: int) -> float:
        """RigL's cosine decay from d0 at step 0 to the floor at the last update step."""
        s = self.settings
        end = max(self.last_update_step(), 1)
        d = s.drop_fraction / 2 * (1 + math.cos(math.pi * min(step, end) / end))
        return max(d, s.drop_floor)

    # -- trainer hooks -----------------------------------------------------
    def before_step(self, step: int) -> None:
        """After backward: keep |grad| for growth on update steps; under "masked", zero inactive gradients."""
        if self.is_update_step(step) and self.settings.growth == "gradient":
            self._grad_scores = [
                (m.weight.grad.detach().abs().clone() if m.weight.grad is not None else torch.zeros_like(m.weight))
                for _, m in self.layers
            ]
        if self.settings.moments == "masked":
            self.mask_gradients()

    def after_step(self, step: int, optimizer: torch.optim.Optimizer | None) -> None:
        self.apply()
        if self.is_update_step(step):
            self.update(step, optimizer)
            self._grad_scores = None

    @torch.no_grad()
    def update(self, step: int, optimizer: torch.optim.Optimizer | None) -> None:
        """One prune-and-grow round over all layers (the same count per layer is dropped and grown)."""
        d = self.drop_fraction(step)
        for i, ((_, m), mask) in enumerate(zip(self.layers, self.masks)):
            w = m.weight
            active = int(mask.sum())
            k = min(round(d * active), w.numel() - active)
            if k <= 0:
                continue
            # drop: the k active weights of smallest magnitude (a topk over the active ones only)
            active_idx = mask.flatten().nonzero().squeeze(1)
            smallest = torch.topk(w.detach().flatten()[active_idx].abs(), k, largest=False, sorted=False).indices
            kept = mask.clone().flatten()
            kept[active_idx[smallest]] = False
            kept = kept.view_as(mask)
            # grow: k positions among the inactive ones after dropping
            if self.settings.growth == "gradient":
                g = self._grad_scores[i] if self._grad_scores is not None else torch.zeros_like(w)
                grow_scores = g.float()
            else:
                grow_scores = _seeded_scores(w.shape, self.seed, f"sparse-grow/{step}/{i}").to(w.device)
            grow_scores = grow_scores.masked_fill(kept, -1.0)
            grown = _topk_mask(grow_scores, k)
            new_mask = kept | grown
            w.mul_(new_mask)  # grown start at zero; dropped become zero
            if self.settings.moments == "masked":
                reset_state(optimizer, w, (new_mask != mask) | grown)
            self.masks[i] = new_mask
        self.updates += 1

    # -- accounting --------------------------------------------------------
    def module_density(self) -> dict[int, float]:
        """id(module) -> fraction of its weight that is active."""
        return {id(m): float(mask.sum()) / mask.numel() for (_, m), mask in zip(self.layers, self.masks)}

    def stats(self) -> dict:
        total = sum(mask.numel() for mask in self.masks)
        active = sum(int(mask.sum()) for mask in self.masks)
        return {
            "prunable": total,
            "active": active,
            "density": active / total,
            "updates": self.updates,
            "layers": {name: {"size": mask.numel(), "active": int(mask.sum())}
                       for (name, _), mask in zip(self.layers, self.masks)},
        }

    def state_dict(self) -> dict:
        return {"masks": [m.cpu() for m in self.masks], "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.masks = [m.to(layer.weight.device) for m, (_, layer) in zip(state["masks"], self.layers)]
        self.updates = int(state["updates"])


@torch.no_grad()
def reset_state(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, where: torch.Tensor) -> None:
    """Zero the per-element optimizer state (Adam moments, SGD momentum) of `param` at `where`."""
    if optimizer is None:
        return
    state = optimizer.state.get(param)
    if not state:
        return
    for value in state.values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value.masked_fill_(where, 0)
