"""Group DRO (Sagawa et al., ICLR 2020): minimise the worst group's loss through online group weights.

Groups are (label, bias label) pairs, so it trains with ground-truth bias
labels. Per batch, as kohpangwei/group_DRO:loss.py `compute_robust_loss`
does: the mean loss of each group present in the batch (0 for absent ones),
plus the generalisation adjustment C / sqrt(n_g) when C > 0; the group
weights q <- q * exp(step_size * that loss), renormalised; the loss is
sum_g q_g * loss_g. q starts uniform and is part of the checkpoint.
Batches are group-balanced, as every command in the reference's README runs
it (`--reweight_groups`): each sample is drawn with weight n / n_g, with
replacement (data/dro_dataset.py `get_loader`, a WeightedRandomSampler), so
every group is drawn equally often however rare it is. Numbers
(`GroupDROParams` below): the reference's defaults, step size 0.01 and C = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from biasbench.baselines.base import Batch, Method, TrainInfo
from biasbench.runconfig import RunConfig


@dataclass(frozen=True)
class GroupDROParams:
    """Group DRO's own numbers (kohpangwei/group_DRO: run_expt.py defaults, loss.py).

    step size 0.01 (`--robust_step_size`), generalisation adjustment C = 0
    (`--generalization_adjustment` "0.0"); groups = label x bias label. Its
    paper's strong L2 and early stopping are not taken: weight decay and
    model selection are the profile's, for every method alike.
    `group_balanced`: batches drawn with weight n / n_g per sample, with
    replacement (`--reweight_groups`, passed by every README command); False
    draws uniform permutations (the first version, which at 1 % put about
    2.6 conflicting samples over 90 groups in a batch of 256).
    """

    step_size: float = 0.01
    adjustment: float = 0.0
    group_balanced: bool = True


class GroupDRO(Method):
    length_free = True  # no schedule: see Method.length_free
    Params = GroupDROParams
    uses_bias_labels = True  # the groups are (label, bias label)

    def __init__(self, model: nn.Module, cfg: RunConfig, train: TrainInfo):
        super().__init__(model, cfg, train)
        params = cfg.method_params()
        self.step_size, self.adjustment = float(params["step_size"]), float(params["adjustment"])
        self.n_groups = train.n_classes * train.n_bias
        device = next(model.parameters()).device
        self.q = torch.full((self.n_groups,), 1.0 / self.n_groups, device=device)
        if train.bias is None:
            raise ValueError("groupdro needs the train split's bias labels (TrainInfo.bias)")
        groups = self.group(train.labels, train.bias)
        counts = torch.bincount(groups, minlength=self.n_groups).float()
        self.adjust = (self.adjustment / counts.clamp_min(1).sqrt()).to(device)
        # n / n_g per sample (absent groups have no samples to weight)
        self.weights = (train.n / counts.double())[groups] if bool(params["group_balanced"]) else None

    def sample_weights(self) -> torch.Tensor | None:
        return self.weights

    def group(self, y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return y * self.train.n_bias + bias

    def loss(self, batch: Batch) -> torch.Tensor:
        per = F.cross_entropy(self.model(batch.x), batch.y, reduction="none")
        g = self.group(batch.y, batch.bias)
        onehot = F.one_hot(g, self.n_groups).to(per.dtype)  # (B, G)
        count = onehot.sum(0)
        group_loss = (onehot.t() @ per) / count.clamp_min(1)  # absent groups: 0, as the reference
        adjusted = group_loss.detach() + (self.adjust if self.adjustment > 0 else 0.0)
        q = self.q * torch.exp(self.step_size * adjusted)
        self.q = q / q.sum()
        return group_loss @ self.q

    def state_dict(self) -> dict:
        return {"q": self.q.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.q = state["q"].to(self.q.device)


METHOD = GroupDRO
