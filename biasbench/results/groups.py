"""Per-group accuracy: the label x bias accuracy matrix of a run, or its mean over seeds, as a heatmap.

Every evaluation in a run record keeps the correct and total counts of each
(label, bias) group, so the figure is read from the records at the
evaluation a selection rule picks, without retraining. The diagonal of
Colored MNIST (colour = digit) is the bias-aligned group; a model that
learned the colour is bright on it and dark everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biasbench.results.plots import save_png
from biasbench.errors import UserError


def accuracy(groups: dict) -> np.ndarray:
    """Label x bias accuracy in %, NaN where a group has no sample."""
    correct = np.asarray(groups["correct"], dtype=np.float64)
    total = np.asarray(groups["total"], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * correct / np.where(total > 0, total, 1), np.nan)


def mean_matrix(records: list[dict], selection: str, split: str) -> np.ndarray:
    """The mean over the records of each one's group accuracy at the evaluation the rule picks."""
    from biasbench.results import selection as rules

    rule = rules.get(selection)
    mats = []
    for r in records:
        chosen = rule.choose(r)
        groups = chosen.get(split, {}).get("groups")
        if not groups:
            raise UserError(f"run {r['run_id']} has no per-group counts at the evaluation {selection!r} picks "
                            "(a rule that averages evaluations, like last3, has none: use valid, final or oracle)")
        mats.append(accuracy(groups))
    if len({m.shape for m in mats}) != 1:
        raise UserError("the runs' group tables differ in shape; choose one dataset")
    if len(mats) == 1:
        return mats[0]
    stack = np.stack(mats)
    counts = (~np.isnan(stack)).sum(axis=0)
    return np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)  # empty group: NaN


def text(matrix: np.ndarray, label_names, bias_names) -> str:
    """The matrix as aligned text: one row per label, one column per bias value."""
    width = max(5, *(len(str(b)) for b in bias_names))
    head = " " * 8 + "".join(f"{str(b)[:width]:>{width + 1}}" for b in bias_names)
    rows = [f"{str(lab)[:8]:<8}" + "".join(f"{'-' if np.isnan(v) else f'{v:.1f}':>{width + 1}}" for v in row)
            for lab, row in zip(label_names, matrix)]
    return "\n".join([head] + rows)


def plot(matrix: np.ndarray, label_names, bias_names, title: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_l, n_b = matrix.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * n_b, 1.2 + 0.5 * n_l))
    im = ax.imshow(matrix, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for i in range(n_l):
        for j in range(n_b):
            v = matrix[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 60 else "white")
    ax.set_xticks(range(n_b), [str(b) for b in bias_names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n_l), [str(lab) for lab in label_names], fontsize=8)
    ax.set_xlabel("bias attribute")
    ax.set_ylabel("label")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    return save_png(fig, out)
