"""Group metrics of debiasing benchmarks, from predictions and group labels.

A group is a (label, bias) pair. For a split:
- accuracy: over all samples;
- unbiased: mean accuracy over the non-empty groups (the CMNIST/CIFAR-10-C
  headline; SubpopBench's "adjusted accuracy");
- aligned / conflicting: accuracy over bias-aligned / bias-conflicting samples
  (conflicting on the test split is the BFFHQ headline);
- worst_group: minimum accuracy over non-empty groups (WILDS' definition);
- loss: mean cross-entropy (the plateau scheduler watches it on valid).
"""

from __future__ import annotations

import torch

METRICS = ("accuracy", "unbiased", "aligned", "conflicting", "worst_group", "loss")


def group_table(
    pred: torch.Tensor, label: torch.Tensor, bias: torch.Tensor, n_classes: int, n_bias: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, total) per group, each (n_classes, n_bias) int64."""
    group = label.long() * n_bias + bias.long()
    total = torch.bincount(group, minlength=n_classes * n_bias)
    correct = torch.bincount(group, weights=(pred == label).double(), minlength=n_classes * n_bias).long()
    return correct.view(n_classes, n_bias), total.view(n_classes, n_bias)


def summarize(
    pred: torch.Tensor,
    label: torch.Tensor,
    bias: torch.Tensor,
    aligned: torch.Tensor,
    loss_sum: float,
    n_classes: int,
    n_bias: int,
) -> dict:
    pred, label, bias, aligned = (t.cpu() for t in (pred, label, bias, aligned))
    correct, total = group_table(pred, label, bias, n_classes, n_bias)
    hit = (pred == label).double()
    present = total > 0
    group_acc = correct[present].double() / total[present].double()

    def mean(mask: torch.Tensor) -> float:
        return float(hit[mask].mean()) if bool(mask.any()) else float("nan")

    return {
        "accuracy": float(hit.mean()),
        "unbiased": float(group_acc.mean()),
        "aligned": mean(aligned),
        "conflicting": mean(~aligned),
        "worst_group": float(group_acc.min()),
        "loss": loss_sum / len(label),
        "groups": {"correct": correct.tolist(), "total": total.tolist()},
    }
