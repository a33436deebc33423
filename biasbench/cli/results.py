"""Reading run records: `leaderboard`, `plot`, `density`, `budget`, `report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from biasbench.errors import UserError
from biasbench.cli.common import _Parser, _dataset_names, _method_names, _selection_rule, add_force, add_results
from biasbench.results.records import one_dataset, without_nan


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from biasbench.results import leaderboard
    from biasbench.results.store import RunStore

    from biasbench.safe_paths import plain_name

    plain_name(args.name, "--name")  # checked before any record is read
    _has_runs(args.results)
    records, warnings = RunStore(Path(args.results)).records()
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    runs, more = leaderboard.runs_table(records, args.selection)
    for w in more:
        print(f"warning: {w}", file=sys.stderr)
    table = leaderboard.aggregate(runs, args.selection)
    from biasbench.results import plots

    leaderboard.check_not_emptier(table, Path(args.out), args.name, args.force, str(args.results))
    try:
        figures = plots.leaderboard_figures(table, Path(args.out), args.name)
        csv_path, md_path = leaderboard.write(table, Path(args.out), args.name, figures)
    except OSError as exc:
        raise UserError(f"cannot write the leaderboard to {args.out}: {exc.strerror or exc}") from None
    print(leaderboard.markdown(table))
    if args.latex:
        from biasbench import atomic

        tex_path = Path(args.out) / f"{args.name}.tex"
        try:
            atomic.write_text(tex_path, leaderboard.latex(table))
        except OSError as exc:
            raise UserError(f"cannot write {tex_path}: {exc.strerror or exc}") from None
        md_path = f"{md_path}, {tex_path}"
    print(f"wrote {csv_path} and {md_path} ({len(runs)} runs, {len(table)} rows)")
    return 0


def _one_dataset_no_nan(records: list[dict]) -> tuple[list[dict], list[str]]:
    """budget's and density's records: runs with a NaN selected metric out, then one dataset per cell."""
    records, nan = without_nan(records)
    records, mixed = one_dataset(records, lambda r: (r["dataset"], r["ratio"], r["profile"]))
    return records, nan + mixed


def _has_runs(results) -> None:
    """A --results that holds no runs/ folder is a typo, not an empty benchmark: refused before anything is
    written, so it never replaces a committed table."""
    if not (Path(results) / "runs").is_dir():
        raise UserError(f"--results {results} holds no runs/ folder (a typo?); nothing was read or written")


def _cmd_plot_density(args: argparse.Namespace) -> int:
    from biasbench.datasets import get as get_dataset
    from biasbench.ratios import config_name, parse_ratio
    from biasbench.results import leaderboard, plots
    from biasbench.results.store import RunStore

    dataset = get_dataset(args.dataset).name
    ratio = config_name(parse_ratio(args.ratio))
    records, warnings = RunStore(Path(args.results)).records()
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    runs, _ = leaderboard.runs_table(records, args.selection)
    if runs.empty:
        raise UserError(f"no finished runs in {args.results}")
    profiles = sorted(set(runs[(runs["dataset"] == dataset) & (runs["ratio"] == ratio)]["profile"]))
    if not profiles:
        raise UserError(f"no runs of {dataset} {ratio} in {args.results}")
    profile = args.profile or (profiles[0] if len(profiles) == 1 else None)
    if profile is None:
        raise UserError(f"runs of {dataset} {ratio} under several profiles ({', '.join(profiles) or 'none'}); pass --profile")
    table = plots.density_table(runs, dataset, ratio, profile)
    if table.empty:
        raise UserError(f"no runs of {dataset} {ratio} under profile {profile!r} in {args.results} "
                        "(runs that override more than --density, e.g. --steps, are left out)")
    out = Path(args.out or f"{args.results}/density-{dataset}-{ratio}-{profile}.png")
    title = (f"{dataset} {ratio}, profile {profile}: test accuracy vs density "
             f"(mean ± std over seeds; selection: {args.selection})")
    try:
        plots.plot_density(table, title, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    cols = ["method", "density", "n_seeds", "unbiased_mean", "unbiased_std", "conflicting_mean", "conflicting_std"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {out}")
    return 0


def _cmd_plot_groups(args: argparse.Namespace) -> int:
    from biasbench.methods import canonical
    from biasbench.datasets import get as get_dataset
    from biasbench.ratios import config_name, parse_ratio
    from biasbench.results import groups, selection
    from biasbench.results.leaderboard import read_variant
    from biasbench.results.store import RunStore

    gen = get_dataset(args.dataset)
    ratio = config_name(parse_ratio(args.ratio))
    method = canonical(args.method)
    records, warnings = RunStore(Path(args.results)).records()
    for w in (w for w in warnings if w.startswith("skipped")):
        print(f"warning: {w}", file=sys.stderr)
    hit = [r for r in records if r.get("dataset") == gen.name and r.get("ratio") == ratio
           and r.get("method") == method and read_variant(r) == ""
           and (args.seed is None or r.get("seed") == args.seed)]
    profiles = sorted({r["profile"] for r in hit})
    profile = args.profile or (profiles[0] if len(profiles) == 1 else None)
    if not hit or (args.profile and args.profile not in profiles):
        seed = f" seed {args.seed}" if args.seed is not None else ""
        raise UserError(f"no runs of {method} on {gen.name} {ratio}{seed} (profile as written) in {args.results}")
    if profile is None:
        raise UserError(f"runs of {method} on {gen.name} {ratio} under several profiles ({', '.join(profiles)}); "
                        "pass --profile")
    hit = sorted((r for r in hit if r["profile"] == profile), key=lambda r: r["seed"])
    matrix = groups.mean_matrix(hit, args.selection, args.split)
    seeds = " ".join(str(r["seed"]) for r in hit)
    what = f"seed {seeds}" if len(hit) == 1 else f"mean over seeds {seeds}"
    labels = selection.labels_read(args.selection, hit[0]["config"]["protocol"].get("selection_metric"))
    title = (f"{gen.name} {ratio} {method} ({profile}): {args.split} accuracy per label x bias group (%), {what}; "
             f"selection {args.selection} (reads {labels} labels)")
    out = Path(args.out or f"{args.results}/groups-{gen.name}-{ratio}-{method}-{profile}.png")
    try:
        groups.plot(matrix, gen.schema.label_names, gen.schema.bias_names, title, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(title)
    print(groups.text(matrix, gen.schema.label_names, gen.schema.bias_names))
    print(f"wrote {out}")
    return 0


def _cmd_density(args: argparse.Namespace) -> int:
    from biasbench.datasets import get as get_dataset
    from biasbench.ratios import config_name, parse_ratio
    from biasbench.results import density
    from biasbench.results.store import RunStore
    from biasbench.runconfig import get_protocol

    dataset = get_dataset(args.dataset).name
    ratio = config_name(parse_ratio(args.ratio))
    get_protocol(args.profile, dataset)
    records, warnings = RunStore(Path(args.results)).records()
    records, more = _one_dataset_no_nan(records)
    for w in [w for w in warnings if w.startswith("skipped")] + more:  # a missing folder is the error below
        print(f"warning: {w}", file=sys.stderr)
    from biasbench.methods import get as get_method, names as method_names

    if args.param == "density":
        chosen_by_sweep = {m for m in method_names() if get_method(m).uses_density and get_method(m).default_density}
        table = [s for s in density.scores(records, dataset, ratio, args.profile) if s.method in chosen_by_sweep]
        label, hint = "density", f"--methods rigl rest --ratios {ratio} --densities sweep"
    else:
        method, field_name = _method_field(args.param)
        table = density.scores(records, dataset, ratio, args.profile, param=f"{method}.{field_name}")
        label, hint = field_name, f"--methods {method} --ratios {ratio} --set {method}.{field_name}=V1,V2,..."
    if not table:
        what = "sparse runs" if args.param == "density" else f"runs of {args.param}"
        raise UserError(f"no {what} of {dataset} {ratio} under profile {args.profile!r} in {args.results}; "
                        f"run a sweep first: biasbench sweep {hint} --profile {args.profile}")
    every, values = ("density", "densities") if label == "density" else (f"{label} value", f"{label} values")
    width = max(9, len(label) + 2)
    print(f"{'method':<8}{label:>{width}}{'seeds':>7}{'valid':>9}{'test':>9}   (%, at each run's best-valid evaluation)")
    for s in table:
        print(f"{s.method:<8}{s.density:>{width}.4g}{s.n_seeds:>7}{s.valid_mean:>9.2f}{s.test_mean:>9.2f}")
    for method in sorted({s.method for s in table}):
        best = density.choose(table, method, args.min_seeds)
        if best is None:
            print(f"{method}: its {values} share fewer than {args.min_seeds} seed(s) yet")
        else:
            seeds = " ".join(str(k) for k in sorted(density.common_seeds(table, method)))
            print(f"{method}: {label} {best.density:g} (best mean valid {best.valid_mean:.2f} over {best.n_seeds} "
                  f"seeds; chosen on valid only, on the seeds every {every} has: {seeds})")
    return 0


def _method_field(param: str) -> tuple[str, str]:
    """--param METHOD.FIELD: a registered method and one of its own numbers, or one line saying why not."""
    import dataclasses

    from biasbench.methods import canonical, get as get_method

    method, dot, field_name = param.partition(".")
    if not dot or not method or not field_name:
        raise UserError(f"--param {param!r}: expected 'density' or METHOD.FIELD, e.g. jtt.identify_fraction")
    method = canonical(method)
    params = get_method(method).Params
    fields = [f.name for f in dataclasses.fields(params)] if params is not None else []
    if field_name not in fields:
        raise UserError(f"--param {param!r}: {method} has no number {field_name!r}"
                        + (f" (it has: {', '.join(fields)})" if fields else " (it has none of its own)"))
    return method, field_name


def _cmd_budget(args: argparse.Namespace) -> int:
    from biasbench import atomic
    from biasbench.methods import canonical
    from biasbench.datasets import get as get_dataset
    from biasbench.ratios import config_name, parse_ratio
    from biasbench.results import budget
    from biasbench.results.store import RunStore
    from biasbench.runconfig import get_protocol

    from biasbench.safe_paths import plain_name

    plain_name(args.name, "--name")  # the one check every name reaching a path goes through
    dataset = get_dataset(args.dataset).name
    ratio = config_name(parse_ratio(args.ratio))
    get_protocol(args.profile, dataset)
    methods = [canonical(m) for m in args.methods]
    if any(b < 1 for b in args.budgets):
        raise UserError("--budgets must be positive step counts")
    records, warnings = RunStore(Path(args.results)).records()
    records, more = _one_dataset_no_nan(records)
    for w in [w for w in warnings if w.startswith("skipped")] + more:
        print(f"warning: {w}", file=sys.stderr)
    t = budget.table(records, dataset, ratio, methods, sorted(set(args.budgets)), args.profile, args.seeds)
    if t.empty:
        raise UserError(f"no runs of {', '.join(methods)} on {dataset} {ratio} under profile {args.profile!r} in "
                        f"{args.results}; see 'biasbench budget --help' for the sweeps that make them")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = (f"biasbench budget --results {args.results} --dataset {dataset} --ratio {ratio} --profile "
               f"{args.profile} --methods {' '.join(methods)} --budgets {' '.join(str(b) for b in args.budgets)} "
               + (f"--seeds {' '.join(str(s) for s in args.seeds)} " if args.seeds else "") +
               f"--out {args.out} --name {args.name}")
    text = budget.markdown(t, command)
    atomic.write_text(out / f"{args.name}.csv", t.to_csv(index=False))
    atomic.write_text(out / f"{args.name}.md", f"# {args.name}\n\n![accuracy against budget]({args.name}.png)\n\n"
                      + text)
    budget.plot(t, out / f"{args.name}.png")
    print(text, end="")
    print(f"wrote {out / args.name}.csv, .md and .png")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import pandas as pd

    from biasbench import atomic
    from biasbench.results import reproduction
    from biasbench.results.store import RunStore

    tables, sources = [], []
    for results in map(Path, args.results):  # one store per profile, e.g. cmnist-cpu and cmnist-disent
        if not ((results / "runs").is_dir() or not args.csv):
            continue
        _has_runs(results)
        records, warnings = RunStore(results).records()
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        if records:
            tables.append(reproduction.measured_from_records(records))
            sources.append(f"{len(records)} run records in `{results}`")
    for path in args.csv or []:
        try:
            table = pd.read_csv(path, keep_default_na=True)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read --csv {path}: {getattr(exc, 'strerror', None) or exc}") from None
        missing = {"dataset", "ratio", "method", "profile", "variant", "selection", "n_seeds"} - set(table.columns)
        if missing:
            raise UserError(f"--csv {path} is not a leaderboard CSV (no column {', '.join(sorted(missing))})")
        tables.append(table)
        sources.append(f"`{path}`")
    measured = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if not measured.empty:  # records first: a CSV row for the same cell is an older copy
        measured["variant"] = [v if isinstance(v, str) else "" for v in measured["variant"]]
        measured = measured.drop_duplicates(["dataset", "ratio", "method", "profile", "variant", "selection"])
    datasets = _dataset_names()
    rows = reproduction.build(measured, set(_method_names()), set(datasets))
    from biasbench.datasets import ordered

    text = reproduction.markdown(rows, sources, ordered(), set(_method_names()))
    out = Path(args.out)
    measured_now = sum(r.verdict != reproduction.NOT_RUN for r in rows)
    before = reproduction.measured_in(out)
    lost = [f"{before - measured_now} measured cell(s)"] if before > measured_now else []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes_unless_emptier(out, text.encode("utf-8"), lost, args.force,
                                          f"{', '.join(args.results)} gives {measured_now}, it has {before}")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    counts = {v: sum(r.verdict == v for r in rows) for v in (reproduction.HOLDS, reproduction.FAILS, reproduction.NOT_RUN)}
    print(f"wrote {out}: {counts[reproduction.HOLDS]} holds, {counts[reproduction.FAILS]} does not hold, "
          f"{counts[reproduction.NOT_RUN]} not run")
    return 0


def _add_scope(parser: argparse.ArgumentParser, ratio_what: str) -> None:
    """Which runs a one-cell reading command reads: --dataset, --ratio, --profile."""
    parser.add_argument("--dataset", default="cmnist", help="dataset (default: cmnist)")
    parser.add_argument("--ratio", default="1pct", metavar="R", help=f"{ratio_what} (default: 1pct)")
    parser.add_argument("--profile", default="cpu", help="profile of the runs (default: cpu)")


def register(sub) -> None:
    for add in (_add_leaderboard, _add_plot, _add_density, _add_budget, _add_report):
        add(sub)


def _add_leaderboard(sub) -> None:
    lb = sub.add_parser(
        "leaderboard",
        help="aggregate run records into leaderboard.csv and leaderboard.md",
        description=(
            "Read every run record in RESULTS/runs, aggregate over seeds (mean ± std) per dataset, ratio, "
            "method, profile and variant, and write OUT/NAME.csv and OUT/NAME.md. Test "
            "metrics are taken at the evaluation a model-selection rule picks: valid (default), final, or "
            "oracle (best test, as DisEnt reports; only for reproducing published numbers)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_results(lb)
    lb.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: ./leaderboard)")
    lb.add_argument("--selection", type=_selection_rule, default="valid", metavar="RULE",
                    help="model selection rule, applied to each record's history: valid (default; the profile's "
                         "valid metric, which reads bias labels when it is unbiased or a group metric), final, "
                         "oracle, last3 (mean of the last 3 evaluations), valid@STEPS (best valid up to STEPS), or "
                         "valid_worst_class / valid_accuracy (best worst-class / plain valid accuracy: class labels "
                         "only, no bias label). The selection_labels column says which labels the rule read")
    lb.add_argument("--name", default="leaderboard", metavar="NAME",
                    help="file name stem: OUT/NAME.csv and OUT/NAME.md (default: leaderboard), e.g. cmnist-cpu")
    lb.add_argument("--latex", action="store_true",
                    help="also write OUT/NAME.tex: one booktabs table per dataset/profile/variant of the headline "
                         "test metric, mean ± std, the best of each ratio column in bold (needs \\usepackage{booktabs})")
    add_force(lb, "OUT/NAME.csv and .md")
    lb.set_defaults(func=_cmd_leaderboard)


def _add_plot(sub) -> None:
    plot = sub.add_parser("plot", help="plot run records: accuracy vs density (REST Fig. 3), per-group accuracy heatmap")
    plot_sub = plot.add_subparsers(dest="what", metavar="WHAT", parser_class=_Parser)
    plot_sub.required = True
    dens = plot_sub.add_parser(
        "density",
        help="unbiased and bias-conflicting test accuracy vs density for rigl and rest, dense baselines as lines",
        description=(
            "Read the run records in RESULTS and draw, for one dataset and ratio, the unbiased and the "
            "bias-conflicting test accuracy against the density of the prunable weights (log scale), mean ± std "
            "over seeds, for RigL and REST, with ERM and reweighted ERM as horizontal lines (REST Fig. 3)."
        ),
        epilog=(
            "example:\n"
            "  biasbench run --method rest --ratio 1pct --density sweep --seeds 3\n"
            "  biasbench run --method rigl --ratio 1pct --density sweep --seeds 3\n"
            "  biasbench plot density --dataset cmnist --ratio 1pct --out density.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dens.add_argument("--dataset", default="cmnist", help="dataset (default: cmnist)")
    dens.add_argument("--ratio", required=True, metavar="R", help="one ratio, e.g. 1pct or 0.01")
    add_results(dens)
    dens.add_argument("--profile", help="profile of the runs (needed only if the results hold several)")
    dens.add_argument("--selection", type=_selection_rule, default="valid", metavar="RULE",
                      help="model selection rule: valid (default), final, oracle, last3 or valid@STEPS")
    dens.add_argument("--out", metavar="FILE.png", help="output (default: RESULTS/density-DATASET-RATIO-PROFILE.png)")
    dens.set_defaults(func=_cmd_plot_density)

    grp = plot_sub.add_parser(
        "groups",
        help="accuracy per label x bias group as a heatmap, for one run or the mean over seeds",
        description=(
            "Read the run records in RESULTS and draw, for one dataset, ratio and method (the profile as written, "
            "no override), the accuracy of every label x bias group at the evaluation the selection rule picks: "
            "one seed with --seed, else the mean over the seeds recorded. The bias-aligned groups are the diagonal "
            "on Colored MNIST and Corrupted CIFAR-10."
        ),
        epilog=(
            "example:\n"
            "  biasbench plot groups --results leaderboard/runs/cmnist-cpu --ratio 1pct --method erm \\\n"
            "      --out leaderboard/groups-cmnist-1pct-erm-cpu.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grp.add_argument("--dataset", default="cmnist", help="dataset (default: cmnist)")
    grp.add_argument("--ratio", required=True, metavar="R", help="one ratio, e.g. 1pct or 0.01")
    grp.add_argument("--method", required=True, help="one method, e.g. erm")
    add_results(grp)
    grp.add_argument("--profile", help="profile of the runs (needed only if the results hold several)")
    grp.add_argument("--seed", type=int, metavar="S", help="one run's seed (default: the mean over all seeds)")
    grp.add_argument("--split", choices=("test", "valid"), default="test", help="which split (default: test)")
    grp.add_argument("--selection", type=_selection_rule, default="valid", metavar="RULE",
                     help="model selection rule: valid (default), final, oracle, valid@STEPS, valid_worst_class, "
                          "valid_accuracy")
    grp.add_argument("--out", metavar="FILE.png", help="output (default: RESULTS/groups-DATASET-RATIO-METHOD-PROFILE.png)")
    grp.set_defaults(func=_cmd_plot_groups)


def _add_density(sub) -> None:
    dsel = sub.add_parser(
        "density",
        help="choose each sparse method's density on validation from a density sweep's records",
        description=(
            "Read a density sweep's run records and print, per sparse method and density, the mean valid score (the "
            "profile's selection metric at each run's best-valid evaluation) and, beside it, the test score; then the "
            "density with the best mean valid score per method (ties: the lower density). Test numbers are never "
            "used to choose. A profile's default density (`chosen_density` in biasbench/protocol/profiles.py) is set from this."
        ),
        epilog=(
            "example:\n"
            "  biasbench sweep --methods rigl rest --ratios 1pct --seeds 3 --densities sweep --profile cpu\n"
            "  biasbench density --ratio 1pct --profile cpu --min-seeds 3\n"
            "  biasbench sweep --methods jtt --ratios 1pct --seeds 2 --set jtt.identify_fraction=0.005,0.02,0.1 \\\n"
            "      --profile disent\n"
            "  biasbench density --param jtt.identify_fraction --profile disent   # JTT's T, by the same rule"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scope(dsel, "the sweep's ratio")
    add_results(dsel)
    dsel.add_argument("--min-seeds", type=int, default=1, metavar="N",
                      help="only values with at least N seeds may be chosen (default: 1)")
    dsel.add_argument("--param", default="density", metavar="P",
                      help="what the sweep varied: 'density' (default; every sparse method), or a method's own "
                           "number as 'sweep --set' names it, METHOD.FIELD (e.g. jtt.identify_fraction)")
    dsel.set_defaults(func=_cmd_density)


def _add_budget(sub) -> None:
    bud = sub.add_parser(
        "budget",
        help="accuracy against training budget: a table, a ranking per budget and a plot",
        description=(
            "Read run records trained at several budgets (the profile's, or --steps N) and write, per method and "
            "budget, the valid-selected test headline over seeds (OUT/NAME.csv, .md, .png). Methods whose runs do "
            "not depend on their length (ERM, reweighted ERM, LfF, GroupDRO: no schedule) may fill a budget from a "
            "longer run, read at valid@B; the table marks those cells."
        ),
        epilog=(
            "example (is `cpu` converged enough to rank methods at 1 %?):\n"
            "  biasbench sweep --methods erm reweighted_erm --ratios 1pct --seeds 2 --steps 4800 --profile cpu\n"
            "  for n in 1200 2400 4800; do biasbench sweep --methods rigl rest --ratios 1pct --seeds 2 --steps $n; done\n"
            "  biasbench budget --ratio 1pct --budgets 600 1200 2400 4800 --seeds 41 42 --out leaderboard \\\n"
            "      --name cmnist-cpu-budget"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scope(bud, "ratio")
    bud.add_argument("--methods", nargs="+", default=["erm", "reweighted_erm", "rigl", "rest"], metavar="M",
                     help="methods (default: erm reweighted_erm rigl rest)")
    bud.add_argument("--budgets", nargs="+", type=int, default=[600, 1200, 2400, 4800], metavar="STEPS",
                     help="budgets in optimizer steps (default: 600 1200 2400 4800)")
    bud.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                     help="only these seeds, e.g. 41 42, so that every budget compares the same ones (default: all)")
    add_results(bud)
    bud.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: ./leaderboard)")
    bud.add_argument("--name", default="budget", metavar="NAME", help="file name stem (default: budget)")
    bud.set_defaults(func=_cmd_budget)


def _add_report(sub) -> None:
    rep = sub.add_parser(
        "report",
        help="compare measured results with the published tables (REPRODUCTION.md)",
        description=(
            "For every published cell (REST Tables 2 and 3; DisEnt's Table 1 and GroupDRO as LC's Table 1 copies "
            "them; JTT and BFFHQ from DeNetDM), each on its paper's metric and selection rule (a cell selected on "
            "test shows the valid-selected number beside it), write the published value, the measured mean ± std "
            "and profile where run, and a verdict: holds "
            "(published value inside mean ± 2 std, or within 2 points), does not hold, or not run (with what a run "
            "needs). Measurements come from the run records in RESULTS and/or committed leaderboard CSVs. The report "
            "says where a profile is a reduced budget and lists where the REST paper's text and released code differ."
        ),
        epilog=(
            "examples:\n"
            "  biasbench report --results results\n"
            "  biasbench report --results leaderboard/runs/cmnist-cpu leaderboard/runs/cmnist-disent\n"
            "  biasbench report --csv leaderboard/cmnist-cpu.csv --out leaderboard/REPRODUCTION.md\n"
            "  biasbench sweep --methods erm rest --profile cpu && biasbench report   # measure, then compare"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("--results", nargs="+", default=["results"], metavar="DIR",
                     help="results directories with run records, one or more (default: ./results)")
    rep.add_argument("--csv", action="append", metavar="FILE",
                     help="a leaderboard CSV (from 'biasbench leaderboard') to include; repeatable")
    rep.add_argument("--out", default="leaderboard/REPRODUCTION.md", metavar="FILE",
                     help="output file (default: leaderboard/REPRODUCTION.md)")
    add_force(rep, "--out")
    rep.set_defaults(func=_cmd_report)
