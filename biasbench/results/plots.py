"""Plots of run records: accuracy vs density in the style of REST Fig. 3, and the leaderboard's figures
(accuracy vs ratio, accuracy vs training cost).

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
from biasbench.ratios import ratio_from_config
from biasbench.results.leaderboard import is_density_variant

def _styles() -> tuple[dict, dict]:
    """(sparse methods, dense reference lines): method -> (colour, label), from the method registry."""
    from biasbench.methods import display, get, ordered

    sparse, dense = {}, {}
    for name in ordered():
        shown = display(name)
        colour, label = shown.colour, shown.name
        if get(name).uses_density:
            sparse[name] = (colour, label)
        elif shown.reference_line:
            dense[name] = (colour, f"{label} (dense)")
    return sparse, dense


SPARSE_STYLE, DENSE_STYLE = _styles()
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
    return save_png(fig, out, dpi=130)


# ---- leaderboard figures: accuracy against the ratio, and against training cost ------------------

SPARSE_METHODS = tuple(SPARSE_STYLE)


def _style(method: str, i: int) -> str:
    from biasbench.methods import display
    from biasbench.errors import UserError

    try:
        return display(method).colour
    except UserError:
        return f"C{i % 10}"


def default_rows(table: pd.DataFrame, dataset: str, profile: str) -> pd.DataFrame:
    """The profile as written (variant ''), valid selection rows, of one dataset/profile."""
    part = table[(table["dataset"] == dataset) & (table["profile"] == profile) & (table["variant"].fillna("") == "")]
    if "selection" in part:
        part = part[part["selection"] == part["selection"].iloc[0]] if len(part) else part
    return part.assign(ratio_pct=part["ratio"].map(lambda n: float(ratio_from_config(n)) * 100))


def save_png(fig, out: Path, dpi: int = 120) -> Path:
    """Write `fig` as a PNG atomically, without matplotlib's version stamp, so the same figure gives the same bytes."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    atomic.write_bytes(out, buffer.getvalue())
    return out


def plot_vs_ratio(part: pd.DataFrame, title: str, out: Path) -> dict[str, tuple[list, list]]:
    """Headline test accuracy against the conflicting ratio (log x), one line per method with a ±std band.

    Returns what was drawn: method -> (ratios in %, means in %), read back from the figure's lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = part["headline"].iloc[0]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for i, (method, t) in enumerate(part.sort_values("ratio_pct").groupby("method", sort=True)):
        m, s = t[f"test_{headline}_mean"], t[f"test_{headline}_std"].fillna(0.0)
        tag = " (bias labels)" if t["bias_labels"].iloc[0] == "yes" else ""
        ax.plot(t["ratio_pct"], m, "-o", color=_style(method, i), ms=4, label=f"{method}{tag}", gid=method)
        ax.fill_between(t["ratio_pct"], m - s, m + s, color=_style(method, i), alpha=0.15, lw=0)
    ax.set_xscale("log")
    ratios = sorted(part["ratio_pct"].unique())
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only the ratios are labelled
    ax.set_xlabel("bias-conflicting share of the training set (%)")
    ax.set_ylabel(f"{headline} test accuracy (%)")
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    drawn = {line.get_gid(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}
    save_png(fig, out)
    return drawn


def plot_vs_cost(part: pd.DataFrame, title: str, out: Path) -> dict[str, tuple[list, list]]:
    """Headline test accuracy against training FLOPs per run (log x): one point per method and ratio,
    sparse methods labelled with their density. Returns method -> (FLOPs, means) as drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = part["headline"].iloc[0]
    part = part.dropna(subset=["train_flops"])
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    markers = dict(zip(sorted(part["ratio_pct"].unique()), "osD^v<>"))
    drawn: dict[str, tuple[list, list]] = {}
    for i, (method, t) in enumerate(part.sort_values("ratio_pct").groupby("method", sort=True)):
        colour = _style(method, i)
        for _, r in t.iterrows():
            ax.errorbar(r["train_flops"], r[f"test_{headline}_mean"], yerr=0 if pd.isna(r[f"test_{headline}_std"])
                        else r[f"test_{headline}_std"], fmt=markers[r["ratio_pct"]], color=colour, ms=5, capsize=2)
            if method in SPARSE_METHODS and not pd.isna(r.get("density")):
                ax.annotate(f"d={r['density']:.3g}", (r["train_flops"], r[f"test_{headline}_mean"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points", color=colour)
        drawn[method] = (list(t["train_flops"]), list(t[f"test_{headline}_mean"]))
        ax.plot([], [], "o", color=colour, label=method)
    for r, mk in markers.items():
        ax.plot([], [], mk, color="grey", label=f"{r:g} %")
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs per run (log)")
    ax.set_ylabel(f"{headline} test accuracy (%)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, out)
    return drawn


def leaderboard_figures(table: pd.DataFrame, out_dir: Path, name: str) -> dict[tuple[str, str], list[str]]:
    """Both figures for every dataset/profile of an aggregated leaderboard: (dataset, profile) -> file names."""
    figures: dict[tuple[str, str], list[str]] = {}
    if table.empty:
        return figures
    for (dataset, profile), _ in table.groupby(["dataset", "profile"], sort=True):
        part = default_rows(table, dataset, profile)
        if part.empty:
            continue
        stem = f"{name}-{dataset}-{profile}"
        title = f"{dataset}, profile {profile}: mean ± std over seeds"
        plot_vs_ratio(part, title, Path(out_dir) / f"{stem}-ratio.png")
        files = [f"{stem}-ratio.png"]
        if part["train_flops"].notna().any():
            plot_vs_cost(part, title, Path(out_dir) / f"{stem}-cost.png")
            files.append(f"{stem}-cost.png")
        figures[(dataset, profile)] = files
    return figures
