"""Accuracy against training budget: is a reduced profile converged enough to rank methods?

A cell is (method, budget B): the valid-selected test headline over seeds of
the runs trained for B steps (the profile's own budget, or `--steps B`).
For a method whose runs do not depend on their total length
(`Method.length_free`: no schedule, no stage shares), a seed without a
B-step run is read from a longer run of the same profile at `valid@B`
(best valid among its evaluations up to step B): the first B steps of that
run are the B-step run (tests/test_selection.py). The `source` column
says which: `runs` or `read from N-step runs`.
"""

from __future__ import annotations

import math

import pandas as pd

from biasbench.results import selection
from biasbench.results.leaderboard import read_variant


def _budget_variant(record: dict) -> str:
    """The variant without its budget (steps=N): what must match across budgets."""
    return ",".join(p for p in read_variant(record).split(",") if p and not p.startswith("steps="))


def table(records: list[dict], dataset: str, ratio: str, methods: list[str], budgets: list[int],
          profile: str | None = None, seeds: list[int] | None = None) -> pd.DataFrame:
    """`seeds`: only these seeds (default: every seed a cell has), so that budgets run with different seed
    counts compare the same seeds."""
    from biasbench.methods import get as get_method

    rows = []
    for method in methods:
        length_free = bool(getattr(get_method(method), "length_free", False))
        mine = [r for r in records if (r.get("dataset"), r.get("ratio"), r.get("method")) == (dataset, ratio, method)
                and (profile is None or r.get("profile") == profile) and _budget_variant(r) == ""
                and r.get("history") and (seeds is None or r.get("seed") in seeds)]
        for budget in budgets:
            exact = {r["seed"]: r for r in mine if int(r["config"]["steps"]) == budget}
            chosen = {seed: selection.choose(r, "valid") for seed, r in exact.items()}
            longer: set[int] = set()
            if length_free:
                for r in sorted(mine, key=lambda r: int(r["config"]["steps"])):
                    if r["seed"] not in chosen and int(r["config"]["steps"]) > budget:
                        chosen[r["seed"]] = selection.choose(r, f"valid@{budget}")
                        longer.add(int(r["config"]["steps"]))
            if not chosen:
                continue
            headline = mine[0]["config"]["protocol"]["headline"]
            values = [100 * float(e["test"][headline]) for e in chosen.values()]
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else math.nan
            source = "runs" if not longer else (
                ("runs + " if exact else "") + "read from " + "/".join(str(n) for n in sorted(longer)) + "-step runs")
            rows.append({"dataset": dataset, "ratio": ratio, "method": method, "budget": budget,
                         "n_seeds": len(values), "seeds": " ".join(str(s) for s in sorted(chosen)),
                         f"test_{headline}_mean": mean, f"test_{headline}_std": std, "source": source,
                         "selection_labels": selection.labels_read(
                             "valid", mine[0]["config"]["protocol"].get("selection_metric"))})
    return pd.DataFrame(rows)


def _mean_column(t: pd.DataFrame) -> str:
    """The table's headline mean column (`test_<metric>_mean`)."""
    return next(c for c in t.columns if c.endswith("_mean"))


def rankings(t: pd.DataFrame) -> dict[int, list[str]]:
    """Methods ordered best first at each budget (by the mean headline)."""
    col = _mean_column(t)
    return {int(b): list(g.sort_values(col, ascending=False)["method"]) for b, g in t.groupby("budget")}


def _separated(a: dict, b: dict, col: str) -> bool:
    """Two cells are ordered only when their means differ by more than the larger of their stds: with 2-3
    seeds a smaller gap is not an order (a cell with one seed has no spread and always counts)."""
    spread = max((0.0 if math.isnan(x) else x) for x in (a[col.replace("_mean", "_std")],
                                                           b[col.replace("_mean", "_std")]))
    return abs(a[col] - b[col]) > spread


def ranking_text(t: pd.DataFrame) -> dict[int, str]:
    """Each budget's ranking, best first, with `≈` between neighbours within each other's spread."""
    col = _mean_column(t)
    by = {(r["method"], int(r["budget"])): r for r in t.to_dict("records")}
    out = {}
    for b, order in rankings(t).items():
        cells = [by[(m, b)] for m in order]
        text = cells[0]["method"]
        for prev, cell in zip(cells, cells[1:]):
            text += (" > " if _separated(prev, cell, col) else " ≈ ") + cell["method"]
        out[int(b)] = text
    return out


def order_changes(t: pd.DataFrame) -> list[tuple[str, str, list[int]]]:
    """Pairs (a, b) whose order by mean differs between budgets: a leads at most budgets, b at the budgets
    listed. Pairs never swapped are stable and left out."""
    col = _mean_column(t)
    means = {(r["method"], int(r["budget"])): r[col] for r in t.to_dict("records")}
    methods = list(dict.fromkeys(t["method"]))
    budgets = sorted({int(b) for b in t["budget"]})
    changes = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            shared = [x for x in budgets if (a, x) in means and (b, x) in means]
            ahead = [x for x in shared if means[(b, x)] > means[(a, x)]]
            if ahead and len(ahead) < len(shared):
                if 2 * len(ahead) > len(shared):  # name the exception, not the rule
                    changes.append((b, a, [x for x in shared if x not in ahead]))
                else:
                    changes.append((a, b, ahead))
    return changes


def markdown(t: pd.DataFrame, command: str) -> str:
    col = _mean_column(t)
    metric = col[len("test_"):-len("_mean")]
    budgets = sorted({int(b) for b in t["budget"]})
    labels = ", ".join(sorted(set(t["selection_labels"]))) if "selection_labels" in t else "valid: class+bias"
    lines = [f"Valid-selected test {metric} accuracy (%, mean ± std over seeds) against the training budget "
             f"(optimizer steps); the selection reads {labels} labels. Made by `{command}`.", "",
             "| method | " + " | ".join(str(b) for b in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for method, g in t.groupby("method", sort=False):
        by = {int(r["budget"]): r for r in g.to_dict("records")}
        cells = []
        for b in budgets:
            r = by.get(b)
            if r is None:
                cells.append("-")
                continue
            std = r[col.replace("_mean", "_std")]
            text = f"{r[col]:.1f}" + ("" if math.isnan(std) else f" ± {std:.1f}") + f" (n={r['n_seeds']})"
            cells.append(text + ("" if r["source"] == "runs" else "*"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "\\* read at `valid@B` from longer runs of a method whose runs do not depend on their length.", ""]
    lines += ["Ranking (best first; `≈`: the two means differ by less than the larger std):", ""]
    lines += [f"- {b} steps: {text}" for b, text in sorted(ranking_text(t).items())]
    changes = order_changes(t)
    lines += ["", "Order changes with the budget: " + ("; ".join(
        f"{b} ahead of {a} at {', '.join(str(x) for x in ahead)} steps" for a, b, ahead in changes)
        if changes else "none (every pair keeps its order at every budget)") + "."]
    return "\n".join(lines) + "\n"


def plot(t: pd.DataFrame, path) -> dict:
    """Accuracy against budget (log2 x), one line per method with a ± std band; returns what was drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = _mean_column(t)
    drawn = {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, g in t.groupby("method", sort=False):
        g = g.sort_values("budget")
        x, y = g["budget"].astype(int).tolist(), g[col].astype(float).tolist()
        s = g[col.replace("_mean", "_std")].astype(float).fillna(0.0).tolist()
        ax.plot(x, y, marker="o", label=method)
        ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)], alpha=0.15)
        drawn[method] = list(zip(x, y))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training budget (optimizer steps)")
    ax.set_ylabel(col[len("test_"):-len("_mean")] + " test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn
