"""The leaderboard: run records aggregated over seeds, as CSV and markdown.

One row per dataset x ratio x method x profile x variant (a variant is what
the user overrode, e.g. `steps=200`; '' for the profile as written). Test
metrics are taken at the evaluation a model-selection rule chooses from
each record's history when the table is read (biasbench/results/selection.py):
- valid (default): the evaluation with the best valid selection metric;
- final: the last evaluation;
- oracle: the best *test* headline metric, as DisEnt reports (PROTOCOL.md);
  kept only to reproduce published numbers, and labelled as such;
- valid_worst_class / valid_accuracy: selections that read no bias label.
The `selection_labels` column (and each section's caption) says which labels
the rule read to choose, as `bias_labels` says which the method trained with.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

from biasbench import atomic
from biasbench.errors import UserError
from biasbench.ratios import ratio_from_config
from biasbench.results.records import nan_free, one_dataset

METRICS = ("unbiased", "conflicting", "aligned", "worst_group", "accuracy", "min_aligned_conflicting")
# min(aligned, conflicting) accuracy: REST's train.py reports min over its two groups (PROTOCOL.md); derived
# from each evaluation's aligned and conflicting accuracies when the table is read.
DERIVED = {"min_aligned_conflicting": lambda m: min(m["aligned"], m["conflicting"])}
KEYS = ["dataset", "ratio", "method", "profile", "variant"]
# Cost columns from each run's accounting (biasbench/training/flops.py); the
# FLOPs are per run (training) and per example (inference), ratios against the
# same model dense.
COSTS = ("density", "params_nonzero", "inference_flops", "inference_flops_ratio", "train_flops", "train_flops_ratio")


def profile_hash(protocol: dict) -> str:
    """12 hex digits naming the protocol settings a run recorded (its profile for that dataset).

    Hashes what the record says it trained with, not the current code, so a
    row whose seeds ran under different profile settings shows two hashes.
    """
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:12]


def uses_bias_labels(method: str) -> bool:
    """Whether the method trains with ground-truth bias labels (its registry entry says); unknown: no."""
    from biasbench.methods import get

    try:
        return bool(get(method).uses_bias_labels)
    except UserError:
        return False


def read_variant(record: dict) -> str:
    """The record's variant against today's protocol: a sparse run whose density is not the profile's
    default now (a sweep run, or a default that a validation sweep has since replaced) is the variant
    `density=D`, so a default row never mixes densities."""
    from biasbench.methods import get as get_method
    from biasbench.runconfig import default_density

    variant = str(record.get("variant") or "")
    density = (record.get("config") or {}).get("density")
    if density is None:
        return variant
    parts = [p for p in variant.split(",") if p and not p.startswith("density=")]
    try:
        cls = get_method(record["method"])
    except UserError:
        cls = None
    default = None if cls is None or not cls.uses_density else default_density(
        record["profile"], record["dataset"], record["method"], record["ratio"], cls.default_density)
    if default is None or abs(float(density) - default) > 1e-12:
        parts.append(f"density={float(density):g}")
    return ",".join(sorted(parts))


def runs_table(records: list[dict], selection: str = "valid") -> tuple[pd.DataFrame, list[str]]:
    """One row per run: keys, seed, test/valid metrics at the selected evaluation."""
    from biasbench.results import selection as rules

    rule = rules.get(selection)
    rows, warnings = [], []
    records, warnings = one_dataset(records, lambda r: (r.get("dataset"), r.get("ratio"), r.get("method"),
                                                        r.get("profile"), read_variant(r)))
    for r in records:
        try:
            chosen = rule.choose(r)
            row = {k: r[k] for k in KEYS}
            row["variant"] = read_variant(r)
            row["_as_recorded"] = row["variant"] == str(r.get("variant") or "")
            cost = r.get("accounting") or {}
            row.update(seed=r["seed"], step=chosen["step"], params=r.get("params"),
                       **{c: cost.get(c) for c in COSTS}, commit=r.get("git_commit"),
                       fingerprint=r["data"]["fingerprint"], headline=r["config"]["protocol"]["headline"],
                       profile_hash=profile_hash(r["config"]["protocol"]),
                       device=r.get("device"), torch=r.get("torch_version"), finished=r.get("finished_at"))
            row["bias_labels"] = "yes" if uses_bias_labels(r["method"]) else "no"
            row["density_rule"] = r.get("density_rule")
            row["selection_labels"] = rules.labels_read(rule.name, r["config"]["protocol"].get("selection_metric"))
            for m in METRICS:
                for split in ("test", "valid"):
                    row[f"{split}_{m}"] = DERIVED[m](chosen[split]) if m in DERIVED else chosen[split][m]
        except (KeyError, TypeError) as exc:
            warnings.append(f"skipped run {r.get('run_id', '?')}: missing field {exc}")
            continue
        if not nan_free(float(row[f"{split}_{m}"]) for m in METRICS for split in ("test", "valid")):
            warnings.append(f"skipped run {r['run_id']}: a metric at its selected evaluation is NaN "
                            "(the row counts only the seeds it averages)")
            continue
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        # one run per seed and row: a sweep run at what is now the default density is the same computation as
        # the default run of that seed; keep the one recorded as such
        table = (table.sort_values("_as_recorded", ascending=False, kind="stable")
                 .drop_duplicates(subset=KEYS + ["seed"], keep="first").sort_index())
        table = table.drop(columns="_as_recorded").reset_index(drop=True)
    return table, warnings


def aggregate(runs: pd.DataFrame, selection: str = "valid") -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame()
    out = []
    for keys, group in runs.groupby(KEYS, sort=False, dropna=False):
        row = dict(zip(KEYS, keys))
        labels = " / ".join(sorted(set(group["selection_labels"])))
        row.update(selection=selection, selection_labels=labels, n_seeds=len(group),
                   seeds=" ".join(str(s) for s in sorted(group["seed"])), headline=group["headline"].iloc[0],
                   bias_labels=group["bias_labels"].iloc[0])
        rules = sorted({str(v) for v in group["density_rule"] if v is not None and not _isnan(v)})
        row["density_rule"] = " ".join(rules) if rules else None
        for m in METRICS:
            values = group[f"test_{m}"].astype(float) * 100
            row[f"test_{m}_mean"] = values.mean()
            row[f"test_{m}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")  # undefined for one seed
        row["params"] = group["params"].iloc[0]
        for col in COSTS:
            values = group[col].dropna() if col in group else ()
            row[col] = float(values.mean()) if len(values) else None  # equal across seeds but for rounding
        row["commits"] = " ".join(sorted({str(c) for c in group["commit"]}))
        row["devices"] = "; ".join(sorted({str(d) for d in group["device"]}))
        row["torch"] = " ".join(sorted({str(t) for t in group["torch"]}))
        row["last_finished"] = max(str(f) for f in group["finished"])
        row["dataset_fingerprint"] = group["fingerprint"].iloc[0]
        row["profile_hash"] = " ".join(sorted(set(group["profile_hash"])))
        out.append(row)
    table = pd.DataFrame(out)
    table["_ratio"] = table["ratio"].map(lambda n: float(ratio_from_config(n)))
    table = table.sort_values(["dataset", "profile", "variant", "_ratio", "method"]).drop(columns="_ratio")
    return table.reset_index(drop=True)


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def cell(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def is_density_variant(variant: str) -> bool:
    """True for a variant that changes only a sparse method's density (a density sweep's runs)."""
    keys = [k for k in str(variant).split(",") if k]
    return bool(keys) and all(k.startswith("density=") for k in keys)


def markdown(table: pd.DataFrame, figures: dict | None = None) -> str:
    """Per dataset/profile/variant: method x ratio of the headline test metric, then all metrics.

    Density-only variants (a sweep's 14 densities) are not one section each:
    they go, with the same ratios' default-density sparse rows, into one
    density-sweep table per dataset/profile, sorted by method and density.
    """
    if table.empty:
        return "No runs yet.\n"
    sweep_mask = table["variant"].map(is_density_variant)
    lines = []
    for (dataset, profile, variant, selection), part in table[~sweep_mask].groupby(
        ["dataset", "profile", "variant", "selection"], sort=False
    ):
        section = _section(part, dataset, profile, variant, selection)
        pics = (figures or {}).get((dataset, profile), []) if variant == "" else []
        if pics:  # after the headline table: accuracy vs ratio, accuracy vs cost
            at = next(i for i, line in enumerate(section) if line.startswith("Provenance")) + 2
            section[at:at] = [f"![{dataset} {profile}: {p.rsplit('-', 1)[1][:-4]}]({p})" for p in pics] + [""]
        lines += section
    for (dataset, profile, selection), part in table[sweep_mask].groupby(["dataset", "profile", "selection"], sort=False):
        base = table[(table["dataset"] == dataset) & (table["profile"] == profile) & (table["selection"] == selection)
                     & (table["variant"] == "") & table["method"].isin(set(part["method"]))
                     & table["ratio"].isin(set(part["ratio"]))]
        lines += _sweep_section(pd.concat([part, base]), dataset, profile, selection)
    return "\n".join(lines)


def _header(part: pd.DataFrame, title: str, selection: str) -> list[str]:
    headline = part["headline"].iloc[0]
    rule = "oracle (best test; reproduces DisEnt-style numbers only)" if selection == "oracle" else selection
    rule += f" (labels it reads: {labels_caption(part)})"
    commits = sorted({c[:12] + ("+dirty" if c.endswith("+dirty") else "") for cs in part["commits"] for c in str(cs).split()})
    return [
        title, "", f"Test {headline} accuracy (%), mean ± std over seeds; model selection: {rule}.", "",
        f"Provenance: biasbench {', '.join(commits)}; "
        f"profile hash {', '.join(sorted({h for hs in part['profile_hash'] for h in str(hs).split()}))}; dataset fingerprints "
        f"{', '.join(sorted({str(f)[:12] for f in part['dataset_fingerprint']}))}; "
        f"{'; '.join(sorted(set(part['devices'])))}; torch {' '.join(sorted(set(part['torch'])))}; "
        f"last run finished {max(part['last_finished'])}.",
        "",
    ]


def labels_caption(part: pd.DataFrame) -> str:
    """The `selection_labels` of a table's rows, e.g. 'valid: class+bias' ('-' for a CSV made before the column)."""
    if "selection_labels" not in part:
        return "-"
    return " / ".join(sorted({str(v) for v in part["selection_labels"] if isinstance(v, str)})) or "-"


_METRIC_HEADER = ("All test metrics (%), and cost (density of the prunable weights, nonzero parameters, "
                  "training and inference FLOPs as a fraction of the same method's models trained dense for the "
                  "profile's budget: LfF and DisEnt train two models, so their 1x is about twice ERM's FLOPs, which "
                  "the CSV's absolute `train_flops` and the cost figure show):")
_COST_COLUMNS = " | density (how chosen) | params | train FLOPs | infer. FLOPs |"


def _section(part: pd.DataFrame, dataset: str, profile: str, variant: str, selection: str) -> list[str]:
    headline = part["headline"].iloc[0]
    lines = _header(part, f"## {dataset} · profile `{profile}`" + (f" · `{variant}`" if variant else ""), selection)
    ratios = list(dict.fromkeys(part["ratio"]))
    lines.append("| method | bias labels | " + " | ".join(ratios) + " |")
    lines.append("|---" * (len(ratios) + 2) + "|")
    for method, rows in part.groupby("method", sort=True):
        cells = []
        for ratio in ratios:
            hit = rows[rows["ratio"] == ratio]
            cells.append(
                cell(hit[f"test_{headline}_mean"].iloc[0], hit[f"test_{headline}_std"].iloc[0])
                + f" (n={hit['n_seeds'].iloc[0]})" if len(hit) else "-"
            )
        lines.append(f"| {method} | {rows['bias_labels'].iloc[0]} | " + " | ".join(cells) + " |")
    return lines + [""] + _metrics_table(part, _METRIC_HEADER)


def _sweep_section(part: pd.DataFrame, dataset: str, profile: str, selection: str) -> list[str]:
    part = part.assign(_r=part["ratio"].map(lambda n: float(ratio_from_config(n))))
    part = part.sort_values(["_r", "method", "density", "variant"])
    lines = _header(part, f"## {dataset} · profile `{profile}` · density sweep", selection)
    return lines + _metrics_table(part, _METRIC_HEADER + " one row per density; the CSV has them as variants `density=D`.")


def _metrics_table(part: pd.DataFrame, caption: str) -> list[str]:
    """Every test metric and the cost columns, one row per table row."""
    lines = [caption, "", "| ratio | method | bias labels | n | " + " | ".join(METRICS) + _COST_COLUMNS,
             "|---" * (len(METRICS) + 8) + "|"]
    for _, r in part.iterrows():
        cells = [cell(r[f"test_{m}_mean"], r[f"test_{m}_std"]) for m in METRICS] + _cost_cells(r)
        lines.append(f"| {r['ratio']} | {r['method']} | {r['bias_labels']} | {r['n_seeds']} | " + " | ".join(cells)
                     + " |")
    return lines + [""]


def _cost_cells(r) -> list[str]:
    def num(v, fmt: str, suffix: str = "") -> str:
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        return "-" if missing else format(v, fmt) + suffix

    dens = num(r.get("density"), ".4g")
    rule = r.get("density_rule")
    if dens != "-" and isinstance(rule, str) and rule:
        dens += f" ({rule})"
    return [dens, num(r.get("params_nonzero"), ",.0f"),
            num(r.get("train_flops_ratio"), ".3g", "x"), num(r.get("inference_flops_ratio"), ".3g", "x")]


def check_not_emptier(table: pd.DataFrame, out_dir: Path, name: str, force: bool, source: str) -> None:
    """Refuse (without `force`) to replace OUT/NAME.csv by a table that lacks rows it has: a mistyped or empty
    --results never wipes a committed leaderboard."""
    old_path = Path(out_dir) / f"{name}.csv"
    try:
        old = pd.read_csv(old_path, keep_default_na=False, dtype=str) if old_path.is_file() else pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError):
        old = pd.DataFrame()
    cols = KEYS + ["selection"]
    if old.empty or not set(cols) <= set(old.columns):
        return
    have = set() if table.empty else {tuple(str(v) for v in row) for row in table[cols].astype(str).values}
    lost = [" ".join(k) for k in (tuple(str(v) for v in row) for row in old[cols].values) if k not in have]
    atomic.refuse_if_losing(old_path, lost, force, f"{source} gives {len(table)} row(s)")


def write(table: pd.DataFrame, out_dir: Path, name: str = "leaderboard", figures: dict | None = None) -> tuple[Path, Path]:
    """OUT/NAME.csv and OUT/NAME.md, each written atomically (a reader never sees half a table)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    atomic.write_text(csv_path, table.to_csv(index=False, float_format="%.4f"))
    title = "Leaderboard" if name == "leaderboard" else f"Leaderboard: {name}"
    atomic.write_text(md_path, f"# {title}\n\n" + markdown(table, figures))
    return csv_path, md_path


def summary_text(table: pd.DataFrame, sparse: bool) -> str:
    """`biasbench run`'s closing table: ratio (density) and every test metric, each column at least as wide as
    its name and its widest cell, with two spaces between columns."""
    heads = ["ratio"] + (["density"] if sparse else []) + list(METRICS)
    rows = []
    for _, row in table.iterrows():
        density = row.get("density")
        missing = density is None or (isinstance(density, float) and math.isnan(density))
        cells = [str(row["ratio"])] + (["-" if missing else format(density, ".4g")] if sparse else [])
        rows.append(cells + [cell(row[f"test_{m}_mean"], row[f"test_{m}_std"]) for m in METRICS])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(heads)] + [line(r) for r in rows])


def _tex(text: str) -> str:
    return "".join("\\" + ch if ch in "&%$#_{}" else ch for ch in str(text))


def latex(table: pd.DataFrame) -> str:
    """Per dataset/profile/variant/selection: a booktabs table of the headline test metric, method x ratio,
    mean ± std over seeds, the best mean of each ratio column in bold (ties at one decimal: all of them).
    A density sweep's variants are left out (the markdown's density-sweep table has them)."""
    if not table.empty:
        table = table[~table["variant"].map(is_density_variant)]
    if table.empty:
        return "% no runs yet\n"
    out = ["% biasbench leaderboard --latex: needs \\usepackage{booktabs}", ""]
    for (dataset, profile, variant, selection), part in table.groupby(
            ["dataset", "profile", "variant", "selection"], sort=False):
        headline = part["headline"].iloc[0]
        ratios = list(dict.fromkeys(part["ratio"]))
        col = f"test_{headline}_mean"
        best = {r: round(float(part[part["ratio"] == r][col].max()), 1) for r in ratios}
        where = _tex(f"{dataset}, profile {profile}" + (f", {variant}" if variant else ""))
        caption = (f"{where}: test {_tex(headline)} accuracy (\\%), mean $\\pm$ std over seeds; model selection: "
                   f"{_tex(selection)} (reads {_tex(labels_caption(part))} labels).")
        out += ["\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}",
                "\\begin{tabular}{ll" + "r" * len(ratios) + "}", "\\toprule",
                "Method & Bias labels & " + " & ".join(_tex(r) for r in ratios) + " \\\\", "\\midrule"]
        for method, rows in part.groupby("method", sort=True):
            cells = []
            for ratio in ratios:
                hit = rows[rows["ratio"] == ratio]
                if not len(hit) or math.isnan(float(hit[col].iloc[0])):
                    cells.append("--")
                    continue
                mean, std = float(hit[col].iloc[0]), float(hit[f"test_{headline}_std"].iloc[0])
                text = f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} $\\pm$ {std:.1f}"
                cells.append(f"\\textbf{{{text}}}" if round(mean, 1) == best[ratio] else text)
            out.append(f"{_tex(method)} & {rows['bias_labels'].iloc[0]} & " + " & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)
