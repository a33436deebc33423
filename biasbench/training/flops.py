"""FLOPs and parameter accounting of a run, dense and at the sparse density.

Accounting (the REST paper does not state its own):
- dense FLOPs per layer are counted by `torch.utils.flop_counter` on one
  example (a multiply-add is 2 FLOPs; convolutions and matmuls only, as that
  counter does: BN, ReLU, pooling are not counted);
- a masked Conv2d/Linear layer costs its dense FLOPs x its density;
- inference FLOPs = one `predict` on one example;
- training FLOPs = for every example of every step, 3 x the sparse forward
  (forward, backward to activations, backward to weights), except on the
  topology-update steps, where the weight gradient is dense: 2 x sparse +
  1 x dense forward (RigL's accounting, Evci et al. 2020 §4, Appendix H).
  A dense method is the same with density 1. Steps a method trains dense
  before its masks exist (a `Stage` declared `dense`: MRM's stages 1-2) count 3 x dense.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from biasbench.training.sparse import PRUNABLE


def count(fn: Callable[[], object], modules: list[nn.Module]) -> tuple[int, dict[int, int]]:
    """Total FLOPs of fn(), and the part spent inside each Conv2d/Linear (id(layer) -> FLOPs)."""
    counter = FlopCounterMode(display=False)
    per_layer: dict[int, int] = {}
    start: dict[int, int] = {}
    handles = []
    for root in modules:
        for layer in root.modules():
            if isinstance(layer, PRUNABLE):
                handles.append(layer.register_forward_pre_hook(
                    lambda m, _i: start.__setitem__(id(m), counter.get_total_flops())))
                handles.append(layer.register_forward_hook(
                    lambda m, _i, _o: per_layer.__setitem__(
                        id(m), per_layer.get(id(m), 0) + counter.get_total_flops() - start[id(m)])))
    try:
        with counter, torch.no_grad():
            fn()
    finally:
        for h in handles:
            h.remove()
    return counter.get_total_flops(), per_layer


def at_density(total: int, per_layer: dict[int, int], density: dict[int, float]) -> float:
    """FLOPs with each masked layer scaled by its density (unmasked ones stay dense)."""
    return total - sum(f * (1.0 - density.get(layer, 1.0)) for layer, f in per_layer.items())


def account(method, x1: torch.Tensor, steps: int, batch_size: int, reference_steps: int | None = None) -> dict:
    """Parameters and FLOPs of a trained method (x1: one preprocessed example).

    `steps` it trained; `reference_steps` (default `steps`) of dense training are the FLOPs ratio's
    denominator: the common budget, so a method that trains more than it (MRM) shows a ratio over 1.
    """
    modules = list(method.modules().values())
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()  # no BN running-stat updates while counting
    try:
        infer_total, infer_layers = count(lambda: method.predict(x1), modules)
        train_total, train_layers = count(lambda: method.training_forward(x1), modules)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    density: dict[int, float] = {}
    prunable = active = updates = 0
    for engine in method.sparse_engines():
        density.update(engine.module_density())
        st = engine.stats()
        prunable, active, updates = prunable + st["prunable"], active + st["active"], updates + st["updates"]
    dense_params = sum(p.numel() for m in modules for p in m.parameters())
    infer_sparse = at_density(infer_total, infer_layers, density)
    fwd_sparse = at_density(train_total, train_layers, density)
    dense = min(sum(st.steps for st in method.stages() if st.dense), steps)  # trained before the masks existed (MRM)
    train_sparse = batch_size * (3 * fwd_sparse * (steps - dense) + 3 * train_total * dense
                                 + (train_total - fwd_sparse) * updates)
    train_dense = batch_size * 3 * train_total * (steps if reference_steps is None else reference_steps)
    return {
        "params_dense": dense_params,
        "params_nonzero": dense_params - (prunable - active),
        "density": (active / prunable) if prunable else 1.0,
        "topology_updates": updates,
        "inference_flops_dense": int(infer_total),
        "inference_flops": float(infer_sparse),
        "inference_flops_ratio": float(infer_sparse / infer_total) if infer_total else 1.0,
        "train_flops_dense": float(train_dense),
        "train_flops": float(train_sparse),
        "train_flops_ratio": float(train_sparse / train_dense) if train_dense else 1.0,
    }
