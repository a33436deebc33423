"""The reproduction report: each published cell against what biasbench measured.

Verdict rule (issue 8): a cell *holds* when the published value lies inside
mean ± 2 std over seeds, or within 2 points of the mean; otherwise it *does
not hold*; with no measurement it is *not run*, and the report says what a
run needs. Measurements come from aggregated leaderboard tables (built from
run records, or read from committed leaderboard CSVs). A verdict under a
reduced-budget profile says so: it tests the protocol at that budget, not
the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from biasbench.protocol import FULL_BUDGET_PROFILES, PROFILES, TrainProtocol, protocol_for
from biasbench.results.leaderboard import aggregate, cell, runs_table
from biasbench.results.selection import labels_read
from biasbench.results.published import PROTOCOL_DIFFERENCES, PUBLISHED, Published

HOLDS, FAILS, NOT_RUN = "holds", "does not hold", "not run"
TOLERANCE_POINTS = 2.0
TOLERANCE_STDS = 2.0


def verdict(published: float, mean: float | None, std: float | None, n: int) -> str:
    if mean is None or math.isnan(mean) or n < 1:
        return NOT_RUN
    gap = abs(published - mean)
    if gap <= TOLERANCE_POINTS:
        return HOLDS
    if n >= 2 and std is not None and not math.isnan(std) and gap <= TOLERANCE_STDS * std:
        return HOLDS
    return FAILS


@dataclass
class Row:
    cell: Published
    method: str  # biasbench method
    profile: str | None
    mean: float | None
    std: float | None
    n: int
    selection: str | None
    verdict: str
    needs: str = ""  # for "not run"
    density: float | None = None  # the measured runs' density (sparse methods)
    valid_mean: float | None = None  # beside a row selected on test (`oracle`): the same runs selected on valid
    valid_std: float | None = None
    density_rule: str | None = None  # how it was chosen: valid, prior, user, rest-published (the records say)
    selection_labels: str | None = None  # which labels the selection read, e.g. "valid: class+bias"


def measured_from_records(records: list[dict]) -> pd.DataFrame:
    """Aggregated tables under both selections a published number may use."""
    tables = [aggregate(runs_table(records, sel)[0], sel) for sel in ("valid", "oracle")]
    tables = [t for t in tables if not t.empty]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _density_matches(row: dict, cell: Published) -> bool:
    """A density variant is the cell's setting when its density is the one the paper reported."""
    measured = row.get("density")
    return cell.density is not None and not _missing(measured) and abs(float(measured) - cell.density) <= 0.02 * cell.density


def _is_density_variant(variant: str) -> bool:
    parts = [p for p in variant.split(",") if p]
    return bool(parts) and all(p.split("=")[0] == "density" for p in parts)


# A profile's model (TrainProtocol.model) as the published tables name it.
PAPER_MODEL_NAMES = {"simple_cnn": "Simple CNN", "mlp_disent": "MLP 100-100-16", "resnet18": "ResNet-18"}


def profile_model(profile: str | None, dataset: str) -> str | None:
    """The model a profile trains on a dataset, in the published tables' words (None: unknown profile)."""
    p = protocol_for(profile or "", dataset)
    return None if p is None else PAPER_MODEL_NAMES.get(p.model, p.model)


def _matches(table: list[dict], cell: Published, method: str) -> list[dict]:
    """The profile as written (for a sparse method: its default, validation-chosen density) and, for a cell
    reported at a density, the runs at that density (REST's published one, a named variant). Profiles that
    train the paper's model come first and alone; only where none of them was run do the others stand in
    (their verdicts say `other model`): a DisEnt-protocol MLP run says nothing about a Simple CNN cell."""
    hit = [r for r in table if (r["dataset"], r["ratio"], r["method"]) == (cell.dataset, cell.ratio, method)
           and (r["variant"] == "" or (_is_density_variant(r["variant"]) and _density_matches(r, cell)))]
    own_model = [r for r in hit if profile_model(r["profile"], cell.dataset) == cell.model]
    hit = own_model or hit
    # the paper's selection rule where measured under it, else whatever was measured (labelled)
    same = [r for r in hit if r["selection"] == cell.selection]
    return sorted(same or hit, key=lambda r: (r["profile"], r["selection"], r["variant"] == ""))


def _fits_cpu(dataset: str) -> bool:
    """The dataset's registry entry says whether its `cpu` grid fits a CPU (unknown datasets: no)."""
    from biasbench.errors import UserError
    from biasbench.datasets import get

    try:
        return bool(get(dataset).fits_cpu)
    except UserError:
        return False


def needs(cell: Published, method: str, methods: set[str], datasets: set[str]) -> str:
    """What a not-run cell needs, in a few words (the commands are listed once at the end): a run of the
    profile that trains the cell's protocol (`Published.profile`), on a CPU where the dataset's grid fits one."""
    if method not in methods:
        return f"`{method}` implemented"
    if cell.dataset not in datasets:
        return f"a `{cell.dataset}` generator"
    if _fits_cpu(cell.dataset):
        if cell.profile == "paper":
            return "a run (`cpu` fits a CPU, `paper` wants a GPU)"
        return f"a `{cell.profile}` run (fits a CPU)"
    return f"a GPU for `{cell.profile}` (`cpu` is a reduced stand-in)"


def commands(rows: list[Row], methods: set[str]) -> list[str]:
    """One sweep per dataset and protocol that fills its not-run cells (sparse methods at their profile's
    density): `cpu` for the paper profile's cells of a dataset that fits a CPU, the cell's own profile
    otherwise (on a GPU where the dataset does not fit a CPU)."""
    out = []
    missing: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for r in rows:
        if r.verdict == NOT_RUN and r.method in methods:
            names, ratios = missing.setdefault((r.cell.dataset, r.cell.profile), (set(), set()))
            names.add(r.method)
            ratios.add(r.cell.ratio)
    for (dataset, profile), (names, ratios) in missing.items():
        ratio_arg = "all" if len(ratios) == 4 else " ".join(sorted(ratios, key=lambda n: float(n[:-3])))
        cpu = _fits_cpu(dataset)
        gpu = "" if cpu else " --gpus-per-run 1 --launcher ray  # or slurm"
        run_profile = "cpu" if cpu and profile == "paper" else profile
        out.append(f"biasbench sweep --methods {' '.join(sorted(names))} --datasets {dataset} --ratios {ratio_arg} "
                   f"--seeds 3 --profile {run_profile}{gpu}")
    return out


def build(table: pd.DataFrame, methods: set[str], datasets: set[str],
          cells: tuple[Published, ...] = PUBLISHED) -> list[Row]:
    """One row per cell and measured (method, profile); the paper's method also when not run."""
    measured = table.to_dict("records") if not table.empty else []
    for r in measured:
        r["variant"] = "" if _missing(r.get("variant")) else str(r["variant"])
    rows: list[Row] = []
    for c in cells:
        for i, method in enumerate(c.methods):
            hit = _matches(measured, c, method)
            for m in hit:
                mean, std, n = float(m[f"test_{c.metric}_mean"]), float(m[f"test_{c.metric}_std"]), int(m["n_seeds"])
                dens = None if _missing(m.get("density")) else float(m["density"])
                rule = m.get("density_rule") if isinstance(m.get("density_rule"), str) else None
                if dens is not None and dens == 1.0 and rule is None:
                    dens = None  # a dense method's accounting
                labels = m.get("selection_labels")
                row = Row(c, method, m["profile"], mean, std, n, m["selection"], verdict(c.value, mean, std, n),
                          density=dens, density_rule=rule,
                          selection_labels=labels if isinstance(labels, str) else labels_read(m["selection"]))
                if m["selection"] == "oracle":
                    same = [v for v in measured if v["selection"] == "valid" and all(
                        v.get(k) == m.get(k) for k in ("dataset", "ratio", "method", "profile", "variant"))]
                    if same:
                        row.valid_mean = float(same[0][f"test_{c.metric}_mean"])
                        row.valid_std = float(same[0][f"test_{c.metric}_std"])
                rows.append(row)
            if i == 0 and not hit:
                rows.append(Row(c, method, None, None, None, 0, None, NOT_RUN, needs(c, method, methods, datasets)))
    return rows


def causes(rows: list[Row]) -> dict[int, str]:
    """For each row that does not hold (by id), how far off it is and why, as far as the runs show.

    Measured from the rows themselves: the selection rule (the same runs selected on valid hold), the seeds'
    spread (the gap is inside 2 std of the difference, counting the paper's std where it prints one), another
    paper's number for the same method, ratio and profile that holds on the same runs (the papers disagree),
    a reduced budget or another model; then the cell's documented cause; else "none known".
    """
    out = {}
    for r in rows:
        if r.verdict != FAILS:
            continue
        c, found = r.cell, []
        if r.valid_mean is not None and verdict(c.value, r.valid_mean, r.valid_std, r.n) == HOLDS:
            found.append("the selection rule (valid-selected, it holds)")
        spread = math.hypot(*(s for s in (r.std, c.std) if s is not None and not math.isnan(s)))
        if c.std is not None and abs(r.mean - c.value) <= TOLERANCE_STDS * spread:
            found.append(f"the seeds' spread (inside {TOLERANCE_STDS:g} std of the difference, with the paper's "
                         f"std {c.std:g})")
        agree = sorted({o.cell.source for o in rows if o.verdict == HOLDS and o.cell.source != c.source and (
            o.method, o.profile, o.density, o.cell.dataset, o.cell.ratio, o.cell.metric) == (
            r.method, r.profile, r.density, c.dataset, c.ratio, c.metric)})
        if agree:
            found.append(f"the papers differ ({'; '.join(agree)} holds on the same runs, under its own rule)")
        if reduced(r.profile, c.dataset):
            found.append(f"the reduced budget (`{r.profile}`)")
        model = profile_model(r.profile, c.dataset)
        if model is not None and model != c.model:
            found.append(f"another model ({model})")
        if c.cause and r.profile == c.profile:  # documented for the paper's protocol, not for a stand-in
            found.append(c.cause)
        gap = r.mean - c.value
        out[id(r)] = (f"{abs(gap):.1f} {'above' if gap > 0 else 'below'}; cause: "
                      f"{'; '.join(found) if found else 'none known'}")
    return out


def _selection(r: Row) -> str:
    """The rule and, in brackets, the labels it read (a CSV made before that column: the rule's usual ones)."""
    if r.selection is None:
        return "-"
    return f"{r.selection} ({r.selection_labels})" if r.selection_labels else r.selection


def reduced(profile: str, dataset: str) -> bool:
    """Less training (steps, epochs) or a smaller model or input than the paper profile; a profile that
    trains a reference's own full budget (FULL_BUDGET_PROFILES, e.g. `disent`) is not reduced."""
    if profile in FULL_BUDGET_PROFILES:
        return False
    p, paper = protocol_for(profile, dataset), protocol_for("paper", dataset)
    if p is None or paper is None:
        return False
    return (p.steps, p.epochs, p.width, p.image_size) != (paper.steps, paper.epochs, paper.width, paper.image_size)


def _budget(p: TrainProtocol) -> str:
    return f"{p.steps} steps" if p.steps else f"{p.epochs} epochs"


def budget_notes(datasets: list[str]) -> list[str]:
    """One line per profile and dataset: is it the paper's budget, and what is reduced."""
    lines = []
    for profile in sorted(PROFILES):
        for dataset in datasets:
            p: TrainProtocol | None = protocol_for(profile, dataset)
            paper = protocol_for("paper", dataset)
            if p is None or paper is None:
                continue
            if profile in FULL_BUDGET_PROFILES:
                text = f"the full budget of {FULL_BUDGET_PROFILES[profile]} ({_budget(p)} of batch {p.batch_size})"
            elif not reduced(profile, dataset):
                text = f"full budget ({_budget(p)}) with the released code's training settings"
            else:
                diffs = [f"{_budget(p)} of batch {p.batch_size} (paper: {_budget(paper)})"]
                diffs += [f"{name} {getattr(p, k)} (paper: {getattr(paper, k)})" for k, name in
                          (("width", "ResNet width"), ("image_size", "image size"),
                           ("update_frequency", "sparse update every"))
                          if getattr(p, k) != getattr(paper, k) and not (k == "width" and p.model == "simple_cnn")]
                text = "**reduced budget**: " + "; ".join(diffs)
            lines.append(f"- `{profile}` on {dataset}: {text}")
    return lines


def _measured(row: Row) -> str:
    if row.mean is None:
        return "-"
    return f"{cell(row.mean, row.std if row.std is not None else float('nan'))} (n={row.n})"


def markdown(rows: list[Row], sources: list[str], datasets: list[str], methods: set[str]) -> str:
    counts = {v: sum(r.verdict == v for r in rows) for v in (HOLDS, FAILS, NOT_RUN)}
    cells = {id(r.cell): r.cell for r in rows}
    measured_full = {id(r.cell) for r in rows if r.verdict != NOT_RUN and not reduced(r.profile, r.cell.dataset)}
    reduced_only = {id(r.cell) for r in rows if r.verdict != NOT_RUN} - measured_full
    lines = [
        "# Reproduction report",
        "",
        f"Generated by `biasbench report` from {', '.join(sources) or 'no measurements'}; do not edit by hand.",
        "",
        f"Verdict: **holds** when the published value lies inside mean ± {TOLERANCE_STDS:g} std over seeds or within "
        f"{TOLERANCE_POINTS:g} points of the mean; **does not hold** otherwise; **not run** with what a run needs. "
        "Accuracies are test accuracies in %, each cell on the metric its paper reports (column `metric`): "
        "`min_aligned_conflicting` = min(bias-aligned, bias-conflicting accuracy), what REST's train.py reports "
        "(min over its two groups); `unbiased` = the mean over label x bias groups (DisEnt, LfF on CMNIST and "
        "CIFAR-10-C); `conflicting` = bias-conflicting test accuracy (BFFHQ). "
        "Selection `valid` = the evaluation with the best validation unbiased accuracy; `oracle` = the best test "
        "accuracy (how DisEnt reports; a selection on test, shown only to compare with papers that used it, with "
        "the same runs' valid-selected number beside it). In brackets after the rule, the labels it reads to "
        "choose: `valid: class+bias` needs the bias label of every valid sample, `test: class+bias` reads the test "
        "split itself; `biasbench leaderboard --selection valid_worst_class` or `valid_accuracy` read class labels "
        "only. A sparse method's measured density says how it was chosen: `valid` (a "
        "density sweep's best mean valid score under that profile), `rest-published` or `user` (the density REST "
        "Table 2 reports, run as a named variant for these cells only), `prior` (no sweep yet). "
        "A cell that does not hold says how far off the measured mean is and the cause as far as the runs show it: "
        "the selection rule (the valid-selected number holds), the seeds' spread (the gap is inside "
        f"{TOLERANCE_STDS:g} std of the difference, counting the paper's std), the papers differ (another paper's "
        "number for the same method holds on the same runs), a reduced budget or another model, a documented "
        "cause (the method's setting, the data); or `none known`.",
        "",
        f"Summary: {counts[HOLDS]} holds, {counts[FAILS]} does not hold, {counts[NOT_RUN]} not run "
        f"({len(rows)} rows over {len(cells)} published cells; {len(reduced_only)} of these cells are measured only "
        "under a reduced budget).",
        "",
        "## Budgets",
        "",
        "A verdict under a reduced budget tests biasbench's protocol at that budget, not the paper's claim.",
        "",
        *budget_notes(datasets),
        "",
    ]
    why = causes(rows)
    for source in dict.fromkeys(r.cell.source for r in rows):
        part = [r for r in rows if r.cell.source == source]
        verified = all(r.cell.verified for r in part)
        lines += [f"## {source}", ""]
        if not verified:
            lines += ["**Unverified**: these numbers are recalled in PROTOCOL.md and have not been checked against "
                      "the paper; treat their verdicts as provisional.", ""]
        notes = list(dict.fromkeys(r.cell.note for r in part if r.cell.note))
        lines += [f"- {n}" for n in notes] + ([""] if notes else [])
        lines += ["| dataset | ratio | paper method (model) | metric | published | biasbench method | profile | "
                  "density (how chosen) | measured | selection | valid-selected | verdict |", "|---" * 12 + "|"]
        for r in part:
            c = r.cell
            dens = f", d={c.density:g}" if c.density is not None else ""
            verdict_text = r.verdict if r.verdict != NOT_RUN else f"not run: needs {r.needs}"
            caveats = []
            if r.verdict == HOLDS and reduced(r.profile, c.dataset):
                caveats.append(f"reduced budget: `{r.profile}`")
            model = profile_model(r.profile, c.dataset)
            if r.verdict == HOLDS and model is not None and model != c.model:
                caveats.append(f"other model: {model}")
            if caveats:
                verdict_text += f" ({'; '.join(caveats)})"
            if id(r) in why:
                verdict_text += f": {why[id(r)]}"
            measured_dens = "-" if r.density is None else f"{r.density:.3g}" + (f" ({r.density_rule})" if r.density_rule else "")
            beside = "-" if r.valid_mean is None else cell(r.valid_mean, r.valid_std if r.valid_std is not None
                                                             else float("nan"))
            published = f"{c.value:g}" + (f" ({c.std:g})" if c.std is not None else "")
            lines.append(f"| {c.dataset} | {c.ratio} | {c.paper_method}{dens} ({c.model}) | {c.metric} | {published} | "
                         f"{r.method} | {r.profile or '-'} | {measured_dens} | {_measured(r)} | {_selection(r)} | "
                         f"{beside} | {verdict_text} |")
        lines.append("")
    fill = commands(rows, methods)
    if fill:
        lines += ["## Filling the not-run cells", "",
                  "Sparse methods run at their profile's default density (validation-chosen, or the prior); add "
                  "`--densities rest-published` for the cells at REST's published density, `--densities sweep` for "
                  "Fig. 3's 14 densities.", "", "```", *fill, "```", ""]
    lines += ["## Protocol differences: REST paper text vs released code", "",
              "| topic | paper text | released code | biasbench |", "|---|---|---|---|"]
    lines += [f"| {t} | {p} | {c} | {b} |" for t, p, c, b in PROTOCOL_DIFFERENCES]
    lines.append("")
    return "\n".join(lines)



def measured_in(path) -> int:
    """How many cells an existing report measured (holds + does not hold, from its summary line); 0 if none."""
    import re
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return 0
    found = re.search(r"Summary: (\d+) holds, (\d+) does not hold", text)
    return int(found.group(1)) + int(found.group(2)) if found else 0
