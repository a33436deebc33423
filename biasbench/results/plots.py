"""Plots of run records: accuracy vs density in the style of REST Fig. 3.

Two panels (unbiased and bias-conflicting test accuracy, at the selected
evaluation) against the density of the prunable weights on a log axis, one
line per sparse method with mean ± std over seeds as a band, and the dense
baselines (ERM, reweighted ERM) as horizontal lines with their std band.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from biasbench import atomic
from biasbench.errors import UserError
from biasbench.results.leaderboard import is_density_variant

SPARSE_STYLE = {"rigl": ("tab:blue", "RigL"), "rest": ("tab:red", "REST"), "mrm": ("tab:purple", "MRM")}
DENSE_STYLE = {"erm": ("tab:green", "ERM (dense)"), "reweighted_erm": ("tab:olive", "reweighted ERM (dense)")}
PANELS = (("unbiased", "unbiased test accuracy (%)"), ("conflicting", "bias-conflicting test accuracy (%)"))


def density_table(runs: pd.DataFrame, dataset: str, ratio: str, profile: str) -> pd.DataFrame:
    """Mean and std over seeds per (method, density) for one dataset/ratio/profile."""
    part = runs[(runs["dataset"] == dataset) & (runs["ratio"] == ratio) & (runs["profile"] == profile)]
    part = part[part["method"].isin(list(SPARSE_STYLE) + list(DENSE_STYLE))].copy()
    # only variants that differ from the profile by density alone (e.g. not shorter budgets)
    part = part[part["variant"].map(lambda v: v == "" or is_density_variant(v))]
    if part.empty:
        return pd.DataFrame()
    part["density"] = part["density"].fillna(1.0).round(6)
    rows = []
    for (method, density), g in part.groupby(["method", "density"]):
        row = {"method": method, "density": density, "n_seeds": len(g)}
        for metric, _ in PANELS:
            values = g[f"test_{metric}"].astype(float) * 100
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")  # undefined for one seed
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["method", "density"]).reset_index(drop=True)


def plot_density(table: pd.DataFrame, title: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sparse = table[table["method"].isin(SPARSE_STYLE)]
    if sparse.empty:
        raise UserError("no sparse runs (rigl, rest) to plot; run e.g. 'biasbench run --method rest --density sweep'")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    lo, hi = sparse["density"].min(), sparse["density"].max()
    for ax, (metric, label) in zip(axes, PANELS):
        for method, (colour, name) in SPARSE_STYLE.items():
            t = sparse[sparse["method"] == method]
            if t.empty:
                continue
            m, s = t[f"{metric}_mean"], t[f"{metric}_std"].fillna(0.0)  # one seed: no band
            seeds = f"{t['n_seeds'].min()}" + (f"-{t['n_seeds'].max()}" if t["n_seeds"].nunique() > 1 else "")
            ax.plot(t["density"], m, "-o", color=colour, ms=3.5, label=f"{name} (n={seeds})")
            ax.fill_between(t["density"], m - s, m + s, color=colour, alpha=0.18, lw=0)
        for method, (colour, name) in DENSE_STYLE.items():
            t = table[table["method"] == method]
            if t.empty:
                continue
            m, s = float(t[f"{metric}_mean"].iloc[0]), float(t[f"{metric}_std"].fillna(0.0).iloc[0])
            ax.axhline(m, color=colour, ls="--", lw=1.2, label=f"{name} (n={t['n_seeds'].iloc[0]})")
            ax.axhspan(m - s, m + s, color=colour, alpha=0.08, lw=0)
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.3, hi * 1.3)
        ax.set_xlabel("density (fraction of prunable weights kept)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.25)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, metadata={"Software": None})  # no version stamp: same bytes
    plt.close(fig)
    atomic.write_bytes(out, buffer.getvalue())
    return out
