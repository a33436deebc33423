"""Modular Risk Minimization (Zhang et al., ICML 2021), as the REST paper describes it (§3).

Three stages; stage 3, the subnetwork MRM reports, trains the common budget
`cfg.steps`, and stages 1-2 come before it (`MRMParams.stage_lengths`, each
one common budget by default; the numbers and their sources are in
`MRMParams` below), so a run is the sum of its declared stages (`plan_stages`):
1. ERM on the full model from its initial weights w0 (kept from construction).
2. Module structure probe: the model is frozen (weights, biases, BN
   statistics) and run in eval mode; one logit pi per prunable weight (the sparse engine's
   `prunable_layers`) learns CE(f(m * w)) + alpha * sum(pi) / batch size, m a
   hard Gumbel-sigmoid sample of pi with straight-through gradients, one
   sample per quarter of the batch (`mask_samples`), with its own Adam (the
   reference's separate mask optimizer). The penalty's gradient is added in
   `before_step`, so the logged train loss stays a cross-entropy.
3. Subnetwork retrain: the weights with pi > 0 (REST §3; or, with --density,
   the `cfg.density` share with the largest logits, per layer as
   `MRMParams.allocation` says) are fixed in a static `SparseEngine`; the
   model goes back to w0, the trainer's optimizer state for it is dropped,
   and ERM trains the masked model for `cfg.steps` steps.

Stages switch in `after_step`, so a checkpoint taken at any evaluation holds
the stage, w0 and the logits (stages 1-2) or the masks (stage 3). Gumbel noise
is drawn from a generator seeded by (seed, step): resumed runs draw the same.
Only stage-3 evaluations may be selected: the method's model is the subnetwork.
Each evaluation entry carries the density of the model it scored (1 in
stage 1, pi > 0 in stage 2, the mask in stage 3) and the record keeps both
masks' densities per layer (`record`: "stage_density").
The trainer's lr scheduler (only `rest-code` has one) is not reset between stages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biasbench import rng
from biasbench.datasets import DIGITS
from biasbench.baselines.base import Batch, Method, Stage, TrainInfo
from biasbench.errors import UserError
from biasbench.runconfig import RunConfig
from biasbench.training.sparse import SparseEngine, SparseSettings, _topk_mask, layer_counts, prunable_layers


def stage_ends(steps: int, lengths) -> tuple[int, int]:
    """Last step of stage 1 and of stage 2, each `lengths[i]` x `steps` long (at least one step)."""
    if steps < 1:
        raise UserError(f"mrm needs at least 1 step, got {steps}")
    end1 = max(1, round(steps * float(lengths[0])))
    return end1, end1 + max(1, round(steps * float(lengths[1])))


def hard_gumbel_sigmoid(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """A {0, 1} sample of sigmoid((pi + logistic noise) / tau) whose gradient is the soft sample's."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    u = u.clamp(1e-10, 1 - 1e-10)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)  # logistic = difference of two Gumbels
    return soft + ((soft > 0.5).to(soft.dtype) - soft).detach()


def top_share(logits: list[torch.Tensor], density: float, allocation: str = "erk") -> list[torch.Tensor]:
    """Bool masks keeping the largest logits, `density` of all prunable weights.

    allocation "erk": each layer keeps its ERK count (the sparse engine's
    init counts, as RigL and REST get) and the probe picks which weights;
    "global": the round(density x total) largest logits over all layers
    together, which can leave a layer almost empty (see MRMParams).
    """
    if allocation == "global":
        flat = torch.cat([t.detach().flatten() for t in logits])
        keep = _topk_mask(flat, round(density * flat.numel()))
        return [part.view_as(t) for part, t in zip(keep.split([t.numel() for t in logits]), logits)]
    if allocation != "erk":
        raise ValueError(f"unknown mask allocation {allocation!r} (erk or global)")
    counts = layer_counts([t.shape for t in logits], density, "erk")
    return [_topk_mask(t.detach(), k) for t, k in zip(logits, counts)]


def mask_density(layers, masks) -> dict:
    """Share of prunable weights a list of bool masks keeps, in all and per layer."""
    kept = [int(m.sum()) for m in masks]
    total = sum(m.numel() for m in masks)
    return {"density": sum(kept) / total,
            "layers": {name: k / m.numel() for (name, _), k, m in zip(layers, kept, masks)}}


@dataclass(frozen=True)
class MRMParams:
    """Modular Risk Minimization's own numbers (Zhang et al., ICML 2021; REST paper §3).

    MRM has no released code (biasbench/DECISIONS.md), so the probe's numbers are those of the probing method MRM builds
    on, Csordas et al.'s differentiable weight masks (RobertCsordas/modules):
    hard Gumbel-sigmoid masks with straight-through gradients,
    temperature 1 (framework/layers/gumbel_sigmoid.py); logits initialised to
    2.0 (main.py `-mask_init`; sigmoid(2) = 0.88 kept); 4 mask samples per
    step, each masking its quarter of the batch (tasks/task.py
    `get_n_mask_samples`, layers/batch_ops.py); the penalty alpha x sum of
    the logits divided by the batch size while the cross-entropy is a batch
    mean (tasks/task.py `train_step`: `mask_loss(...) / batch_size`;
    masked_model.py `mask_loss`), alpha 1e-4 (main.py `-mask_loss_weight`
    default, also its tuple/add_mul profiles) and 3e-4 on CIFAR-10 (its
    cifar10_class_removal profile, used for CIFAR-10-C and BFFHQ); a fresh
    Adam over the logits only, no weight decay, lr 1e-2 (`-mask_lr`
    default), 1e-3 in the CIFAR-10 profile. `penalty_per` "sample" is that
    scale; "batch" (alpha per logit, not divided) was the first version's,
    which drove every logit down in lockstep (biasbench/DECISIONS.md).
    Mask lr x probe length: under Adam a logit the penalty dominates falls
    about one mask lr per step, so a probe can only prune within
    steps x lr of logit travel from the init 2.0. The CIFAR-10 profile's
    1e-3 goes with a 20,000-step probe (travel 20); `cpu`'s 800-step (CIFAR-10-C)
    and 400-step (BFFHQ) probes would travel 0.8 and 0.4 and keep every weight
    (pi > 0 everywhere), so `cpu` takes the default 1e-2 on every dataset
    (travel 8, 4, and 6 on CMNIST's 600 steps); the full-budget profiles keep
    the reference's pairs (travel >= 20).
    Masked parameters: the prunable weights only (convolution and linear
    weights, what every sparse method's density counts); the reference also
    masks biases and normalisation parameters, which the subnetwork of stage 3
    keeps dense in any case.
    Budget: stage 3, the subnetwork the method reports, trains the common
    budget (`cfg.steps`), as every other method's final model does; stages 1
    (ERM) and 2 (probe) come on top, each as long as stage 3
    (`stage_lengths`, multiples of the common budget): REST §3 retrains the
    subnetwork for N1 steps, as long as stage 1, and Csordas's profiles
    probe for as long as they pretrain (step_per_mask = stop_after). So an
    MRM run trains 3x the common budget (2 of them dense) and its recorded training FLOPs
    (ratio against dense ERM at the common budget) say so. Splitting one
    budget in thirds instead left the subnetwork 200 of `cpu`'s 600 steps,
    which measured MRM's budget, not MRM (biasbench/DECISIONS.md).
    Probe mode: the frozen model runs in eval mode (BN running statistics of
    stage 1), as Csordas's masking keeps the trained network in eval mode
    while its masks are learned; in train mode the batch statistics would
    move with the masks.
    Final mask (`density_rule`): "probe" (default) keeps the weights whose
    logit is positive after the probe, REST §3's pi > 0: the probe decides
    both the density and which weights, per layer as the logits fall. With
    --density D the run instead keeps the D share of prunable weights with
    the largest logits (REST §3 repeats stages 2-3 "until the desired level
    of sparsity is achieved"; a fixed budget cannot repeat, so the threshold
    moves), allocated over layers by `allocation`.
    Allocation over layers for --density (`allocation`): "erk" (default)
    keeps in each layer the count ERK gives it, the same counts RigL and
    REST start from, and the probe decides which weights. The first version
    took the top logits over all layers together ("global", kept as an
    option); at density 0.005 that left 11 of 524,288 weights in the Simple
    CNN's third conv, a disconnected network at chance.
    """

    stage_lengths: tuple[float, float] = (1.0, 1.0)  # stages 1 and 2, in common budgets; stage 3 = 1 budget
    alpha: float = 1e-4
    temperature: float = 1.0
    mask_init: float = 2.0
    mask_lr: float = 1e-2
    allocation: str = "erk"  # per-layer counts under --density: "erk" or "global" (see above)
    penalty_per: str = "sample"  # alpha x sum(pi) / batch size ("sample", the reference's) or not divided ("batch")
    mask_samples: int = 4  # Gumbel samples per step, each masking its share of the batch


class MRM(Method):
    Params = MRMParams
    uses_density = True  # --density fixes the subnetwork's density; without it the probe decides (pi > 0)
    default_density = False

    @classmethod
    def own_params(cls, profile: str, dataset, protocol) -> MRMParams:
        # Csordas's defaults on the digits family; its CIFAR-10 profile (weight 3e-4, mask lr 1e-3) on natural
        # images and faces, with the default lr 1e-2 under `cpu`, whose short probes 1e-3 could not move past pi = 0
        if dataset.family == DIGITS:
            return MRMParams()
        return MRMParams(alpha=3e-4, mask_lr=1e-2 if profile == "cpu" else 1e-3)

    def __init__(self, model: nn.Module, cfg: RunConfig, train: TrainInfo):
        super().__init__(model, cfg, train)
        params = cfg.method_params()
        self.alpha, self.tau = float(params["alpha"]), float(params["temperature"])
        per = str(params.get("penalty_per", "batch"))
        if per not in ("sample", "batch"):
            raise ValueError(f"unknown mrm penalty_per {per!r} (sample or batch)")
        # the penalty's gradient per logit: alpha / batch size beside a batch-mean cross-entropy (the reference)
        self.penalty_grad = self.alpha / cfg.protocol.batch_size if per == "sample" else self.alpha
        self.mask_samples = max(1, int(params.get("mask_samples", 1)))
        self.probe_density: dict | None = None  # the probe's pi > 0 mask, once stage 2 is over
        self.allocation = str(params["allocation"])
        self.ends = stage_ends(cfg.steps, params["stage_lengths"])
        self.layers = prunable_layers(model)
        self.initial: dict[str, torch.Tensor] | None = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.logits = [nn.Parameter(torch.full_like(m.weight, float(params["mask_init"]))) for _, m in self.layers]
        self.mask_opt = torch.optim.Adam(self.logits, lr=float(params["mask_lr"]))
        self.engine: SparseEngine | None = None
        self.done = 0  # optimizer steps completed

    def stage(self, step: int) -> int:
        return 1 if step <= self.ends[0] else 2 if step <= self.ends[1] else 3

    def _frozen_forward(self, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
        """The model with each prunable weight times its mask; nothing of the model is trained or updated."""
        values = {name: p.detach() for name, p in self.model.named_parameters()}
        for (name, m), mask in zip(self.layers, masks):
            values[f"{name}.weight"] = m.weight.detach() * mask
        values.update({name: b.clone() for name, b in self.model.named_buffers()})
        mode = self.model.training
        self.model.eval()  # BN normalises with stage 1's running statistics, as the masking reference does
        try:
            return torch.func.functional_call(self.model, values, (x,))
        finally:
            self.model.train(mode)

    def _generator(self, step: int) -> torch.Generator:
        seed = int(rng.hash_keys(self.cfg.seed, "mrm-gumbel", np.array([step]))[0])
        return torch.Generator(device=self.logits[0].device).manual_seed(seed)

    def loss(self, batch: Batch) -> torch.Tensor:
        step = self.done + 1
        if self.stage(step) != 2:
            return F.cross_entropy(self.model(batch.x), batch.y)
        g = self._generator(step)
        outputs = []
        for part in batch.x.tensor_split(self.mask_samples):  # one mask sample per share of the batch
            masks = [hard_gumbel_sigmoid(t, self.tau, g) for t in self.logits]
            outputs.append(self._frozen_forward(part, masks))
        return F.cross_entropy(torch.cat(outputs), batch.y)  # + alpha x sum(pi) / B: see before_step

    def before_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        stage = self.stage(step)
        if stage == 2:
            for p in self.model.parameters():
                p.grad = None  # the trainer's optimizer skips them: no step, no weight decay, no momentum
            for t in self.logits:  # the penalty alpha x sum(pi) / B has gradient alpha / B for every logit
                g = self.penalty_grad
                t.grad = torch.full_like(t, g) if t.grad is None else t.grad.add_(g)
            self.mask_opt.step()
            self.mask_opt.zero_grad(set_to_none=True)
        elif stage == 3:
            self.engine.before_step(step)

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        if self.stage(step) == 3:
            self.engine.after_step(step, optimizer)
        self.done = step

    @classmethod
    def plan_stages(cls, steps: int, params: dict, n_train: int | None, batch_size: int) -> tuple[Stage, ...]:
        """ERM and the probe (dense, never selected: not the method's model), then the subnetwork, which
        trains the common budget."""
        first, second = stage_ends(steps, params["stage_lengths"])
        return (Stage("erm", first, selectable=False, dense=True),
                Stage("probe", second - first, selectable=False, dense=True), Stage("subnetwork", steps))

    def end_stage(self, stage: Stage, optimizer: torch.optim.Optimizer | None) -> None:
        if stage.name == "probe":
            self._start_subnetwork(optimizer)

    def _settings(self) -> SparseSettings:
        density = float(self.cfg.density) if self.cfg.density is not None else 1.0  # static masks: counts are theirs
        return SparseSettings(density=density, update_frequency=0, total_steps=self.ends[1] + self.cfg.steps)

    def final_masks(self) -> list[torch.Tensor]:
        """pi > 0 (the probe decides), or the cfg.density share with the largest logits."""
        if self.cfg.density is None:
            return [t.detach() > 0 for t in self.logits]
        return top_share(self.logits, float(self.cfg.density), self.allocation)

    def _start_subnetwork(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Stage 3: fix the mask, reset the model to w0 and its optimizer state to fresh."""
        keep = self.final_masks()
        self.probe_density = mask_density(self.layers, [t.detach() > 0 for t in self.logits])
        self.model.load_state_dict(self.initial)
        if optimizer is not None:
            for p in self.model.parameters():
                optimizer.state.pop(p, None)
        self.engine = SparseEngine(self.model, self._settings(), self.cfg.seed, masks=keep)
        self.initial, self.logits, self.mask_opt = None, [], None  # no longer needed (nor checkpointed)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        if self.engine is None and self.done > self.ends[0]:  # stage 2: the probe's subnetwork so far, pi > 0
            return self._frozen_forward(x, [(t > 0).to(t.dtype) for t in self.logits])
        return self.model(x)

    def on_evaluate(self, step: int, entry: dict) -> None:
        """The scored model's density: dense in stage 1, the probe's pi > 0 in stage 2, the mask in stage 3."""
        if self.engine is not None:
            entry["density"] = self.engine.stats()["density"]
        elif step > self.ends[0]:
            entry["density"] = mask_density(self.layers, [t.detach() > 0 for t in self.logits])["density"]
        else:
            entry["density"] = 1.0

    def record(self) -> dict:
        """Per-stage density: stage 1 dense, stage 2's pi > 0 (per layer), stage 3's mask (per layer)."""
        if self.engine is None:
            return {}
        return {"stage_density": {"erm": 1.0, "probe": self.probe_density,
                                  "subnetwork": mask_density(self.layers, self.engine.masks)}}

    def sparse_engines(self) -> list[SparseEngine]:
        return [self.engine] if self.engine is not None else []

    def state_dict(self) -> dict:
        if self.engine is not None:
            return {"done": self.done, "sparse": self.engine.state_dict(), "probe_density": self.probe_density}
        return {
            "done": self.done,
            "initial": {k: v.cpu() for k, v in self.initial.items()},
            "logits": [t.detach().cpu() for t in self.logits],
            "mask_opt": self.mask_opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.done = int(state["done"])
        if "sparse" in state:  # stage 3: the model's weights (loaded by the trainer) are already w0-trained and masked
            self.engine = SparseEngine(self.model, self._settings(), self.cfg.seed, masks=state["sparse"]["masks"])
            self.engine.load_state_dict(state["sparse"])
            self.probe_density = state.get("probe_density")
            self.initial, self.logits, self.mask_opt = None, [], None
            return
        device = self.logits[0].device
        self.initial = {k: v.to(device) for k, v in state["initial"].items()}
        with torch.no_grad():
            for t, saved in zip(self.logits, state["logits"]):
                t.copy_(saved)
        self.mask_opt.load_state_dict(state["mask_opt"])


METHOD = MRM
