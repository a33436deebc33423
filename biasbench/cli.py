"""The `biasbench` command: the only place that parses arguments and prints."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Sequence

from biasbench import __version__
from biasbench.errors import UserError
from biasbench.ratios import STANDARD_RATIOS, config_name

_RATIO_HELP = ", ".join(f"{r} ({config_name(r)})" for r in STANDARD_RATIOS)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _TqdmReporter:
    def info(self, message: str) -> None:
        print(message)  # progress notes are output; stderr is kept for warnings and the error line

    def bar(self, total: int, desc: str, unit: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=None, leave=False)


def _dataset_names() -> list[str]:
    from biasbench.generators import names

    return names()


def _method_names() -> list[str]:
    from biasbench.baselines import names

    return names()


def _cmd_generate(args: argparse.Namespace) -> int:
    from biasbench.generators import get
    from biasbench.generators.build import generate
    from biasbench.parallel import default_workers
    from biasbench.paths import data_root
    from biasbench.ratios import parse_ratios

    gen = get(args.dataset)  # unknown dataset fails before anything else
    ratios = parse_ratios(args.ratio)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    root = data_root(args.out)
    report = generate(
        gen.name,
        ratios,
        root,
        seed=args.seed,
        source_dir=Path(args.source_dir) if args.source_dir else None,
        force=args.force,
        allow_unverified=args.allow_unverified,
        workers=args.workers or default_workers(),
        reporter=_TqdmReporter(),
    )
    if report.removed_leftovers:
        print(f"removed {report.removed_leftovers} leftover(s) of an interrupted run")
    if report.built:
        print(f"{gen.name}: built {', '.join(report.built)} in {report.timings['total']:.1f} s -> {report.path}")
    if report.skipped:
        print(
            f"{gen.name}: {', '.join(report.skipped)} already built with identical parameters: "
            "nothing to do (--force rebuilds)"
        )
    if report.configs_on_disk:
        example = (report.built or report.skipped)[0]
        print(f"configs in {report.path}: {', '.join(report.configs_on_disk)}")
        print(f'load with: datasets.load_dataset("{report.path}", "{example}")')
    return 0


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device (use auto, cpu, cuda or cuda:N)") from None


def _check_dataset_folder(path: Path, dataset: str) -> None:
    import json

    manifest = path / "manifest.json"
    try:
        found = json.loads(manifest.read_text()).get("dataset")
    except (OSError, ValueError):
        raise UserError(f"{path} is not a generated dataset folder (no readable manifest.json)") from None
    if found != dataset:
        raise UserError(f"{path} holds {found!r}, not {dataset!r}; pass --dataset {found}")


def _add_numerics_options(parser: argparse.ArgumentParser) -> None:
    """run's and sweep's numerics flags (each a recorded override: in the run id and the variant)."""
    from biasbench.runconfig import AMP_DTYPES

    parser.add_argument("--amp", choices=AMP_DTYPES, help="CUDA: train and evaluate under bf16 autocast (in the run id; "
                        "default: fp32)")
    parser.add_argument("--contiguous", action="store_true",
                        help="NCHW contiguous tensors instead of channels_last (in the run id; default: channels_last)")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="CUDA: autotuned cuDNN kernels, faster but not bit-reproducible (in the run id; "
                             "default: deterministic)")


def _amp(args: argparse.Namespace, device_type: str) -> str | None:
    """--amp is a CUDA choice: refused up front on a CPU run instead of failing inside it."""
    if args.amp is not None and device_type == "cpu":
        raise UserError("--amp needs --device cuda (autocast is for CUDA runs)")
    return args.amp


def _cmd_run(args: argparse.Namespace) -> int:
    from biasbench.baselines import get as get_method
    from biasbench.generators import get as get_dataset
    from biasbench.paths import data_root
    from biasbench.ratios import parse_ratios
    from biasbench.results import leaderboard
    from biasbench.runconfig import get_protocol, parse_densities, profile_seeds
    from biasbench.runner import RunRequest, run_many

    from biasbench.baselines import canonical

    args.method = canonical(args.method)  # `REST` and `rest` are one method: one run id, one row
    method_cls = get_method(args.method)
    densities = parse_densities(args.density)
    if densities != [None] and not method_cls.uses_density:
        raise UserError(f"--density applies to sparse methods only; {args.method} is dense")
    gen = get_dataset(args.dataset)
    ratios = parse_ratios(args.ratio)
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be a positive integer, got {args.steps}")
    device = _device(args.device)
    profile = args.profile
    if profile is None:
        profile = "paper" if device.type == "cuda" else "cpu"
        why = "a GPU is available" if device.type == "cuda" else "no GPU here; --profile paper for the full budget"
        print(f"profile: {profile} ({why})")
    protocol = get_protocol(profile, gen.name)
    seeds = profile_seeds(protocol, args.seeds)
    data_path = None
    if args.data and args.data_dir:
        raise UserError("--data names one dataset folder or Hub repo and --data-dir a root of generated ones; "
                        "give one of them")
    if args.data:
        from biasbench.hub.remote import fetch, hub_repo_id

        repo = hub_repo_id(args.data)
        data_path = fetch(repo) if repo else Path(args.data)
        _check_dataset_folder(data_path, gen.name)
    root = data_root(args.data_dir)
    request = RunRequest(
        method=args.method, dataset=gen.name, ratios=ratios, seeds=seeds, profile=profile, data_root=root,
        results=Path(args.results), device=device, steps=args.steps, beta=args.beta, eval_every=args.eval_every,
        source_dir=Path(args.source_dir) if args.source_dir else None, restart=args.restart, data_path=data_path,
        amp=_amp(args, device.type), cudnn_benchmark=args.cudnn_benchmark, channels_last=not args.contiguous,
    )
    records = []
    for density in densities:
        request.density = density
        records += run_many(request, _TqdmReporter())
    runs, _ = leaderboard.runs_table(records, "valid")
    table = leaderboard.aggregate(runs, "valid")
    print(f"\n{args.method} on {gen.name}, profile {profile}; test metrics (%) at the best-valid evaluation, "
          f"mean ± std over {len(seeds)} seed(s):")
    metrics = leaderboard.METRICS
    sparse = method_cls.uses_density
    print(f"{'ratio':<8}" + (f"{'density':>9}" if sparse else "") + "".join(f"{m:>18}" for m in metrics))
    for _, row in table.iterrows():
        cells = "".join(f"{leaderboard.cell(row[f'test_{m}_mean'], row[f'test_{m}_std']):>18}" for m in metrics)
        print(f"{row['ratio']:<8}" + (f"{row['density']:>9.4g}" if sparse else "") + cells)
    print(f"records in {Path(args.results) / 'runs'}; 'biasbench leaderboard --results {args.results}' aggregates them")
    return 0


def _names(values: list[str], known: list[str], what: str) -> list[str]:
    """--methods/--datasets: names (space or comma separated) or 'all'."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise UserError(f"no {what} given: name them or pass 'all'")
    return list(known) if [n.lower() for n in names] == ["all"] else list(dict.fromkeys(names))


def _sweep_launcher(args: argparse.Namespace, results: Path):
    for flag, value, low in (("--max-parallel", args.max_parallel, 1), ("--cpus-per-run", args.cpus_per_run, 1),
                             ("--gpus-per-run", args.gpus_per_run, 0)):
        if value is not None and value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
    gpus = args.gpus_per_run if args.gpus_per_run is not None else (1 if args.device.startswith("cuda") else 0)
    if args.launcher == "local":
        from biasbench.launch.local import LocalLauncher

        return LocalLauncher(args.max_parallel, args.device)
    if args.launcher == "ray":
        from biasbench.launch.ray_tasks import RayLauncher

        return RayLauncher(args.address, args.cpus_per_run or 1, gpus, args.max_parallel, args.device)
    from biasbench.launch.slurm import SlurmLauncher

    return SlurmLauncher(results / "slurm", args.cpus_per_run or 1, int(gpus), args.max_parallel, args.device,
                         args.partition, args.time_min, wait=not args.no_wait)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from biasbench.launch import grid, sweep
    from biasbench.paths import data_root
    from biasbench.ratios import parse_ratios
    from biasbench.runconfig import parse_densities

    from biasbench.baselines import canonical

    methods = list(dict.fromkeys(canonical(m) for m in _names(args.methods, _method_names(), "methods")))
    datasets = _names(args.datasets, _dataset_names(), "datasets")
    ratios = parse_ratios(",".join(args.ratios))
    densities = tuple(parse_densities(",".join(args.densities) if args.densities else None))
    if args.launcher == "local":
        _device(args.device)  # checks that it exists here
    elif args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UserError(f"--device {args.device!r} is not a device (use auto, cpu, cuda or cuda:N)")
    results = Path(args.results)
    launcher = _sweep_launcher(args, results)  # a missing extra fails before any planning
    profile = args.profile
    if profile is None:
        gpu = args.device.startswith("cuda") or (args.gpus_per_run or 0) > 0 or (
            args.launcher == "local" and args.device == "auto" and _device("auto").type == "cuda")
        profile = "paper" if gpu else "cpu"
        print(f"profile: {profile} ({'runs get a GPU' if gpu else 'no GPU asked for; --profile paper for the full budget'})")
    spec = grid.SweepSpec(
        methods=methods, datasets=datasets, ratios=ratios, n_seeds=args.seeds, profile=profile,
        data_root=data_root(args.data_dir), results=results, densities=densities, steps=args.steps,
        eval_every=args.eval_every, beta=args.beta, source_dir=Path(args.source_dir) if args.source_dir else None,
        amp=_amp(args, "cuda" if args.device.startswith("cuda") else args.device), cudnn_benchmark=args.cudnn_benchmark,
        channels_last=not args.contiguous,
    )
    plan = grid.expand(spec, _TqdmReporter())
    todo = plan.todo
    print(f"plan: {len(plan.runs)} runs, {len(plan.done)} done, {len(todo)} to do")
    if args.dry_run or not todo:
        for run in todo if args.dry_run else []:
            print(f"  to do: {run.label}  ({run.run_id})")
        print("nothing to do" if not todo else "dry run: nothing was started")
        return 0
    print(f"launcher: {launcher.describe(len(todo))}")
    outcome = sweep.execute(plan, launcher, results, _TqdmReporter())
    job_ids = getattr(launcher, "job_ids", [])
    if args.launcher == "slurm" and args.no_wait:
        print(f"submitted {len(todo)} runs as SLURM job array {job_ids[0].split('_')[0] if job_ids else '?'}; "
              f"re-run this sweep to see what is done")
        return 0
    for run, message in outcome.failed:
        print(f"failed: {run.label} ({run.run_id}): {message}", file=sys.stderr)
    print(f"sweep: {len(outcome.finished)} finished, {len(outcome.failed)} failed; records in {results / 'runs'}; "
          f"'biasbench leaderboard --results {results}' aggregates them")
    return 1 if outcome.failed else 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from biasbench.results import leaderboard
    from biasbench.results.store import RunStore

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):  # checked before any record is read
        raise UserError(f"--name must be a file name stem (letters, digits, '.', '_', '-'), got {args.name!r}")
    records, warnings = RunStore(Path(args.results)).records()
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    runs, more = leaderboard.runs_table(records, args.selection)
    for w in more:
        print(f"warning: {w}", file=sys.stderr)
    table = leaderboard.aggregate(runs, args.selection)
    from biasbench.results import plots

    try:
        figures = plots.leaderboard_figures(table, Path(args.out), args.name)
        csv_path, md_path = leaderboard.write(table, Path(args.out), args.name, figures)
    except OSError as exc:
        raise UserError(f"cannot write the leaderboard to {args.out}: {exc.strerror or exc}") from None
    print(leaderboard.markdown(table))
    print(f"wrote {csv_path} and {md_path} ({len(runs)} runs, {len(table)} rows)")
    return 0


def _cmd_plot_density(args: argparse.Namespace) -> int:
    from biasbench.generators import get as get_dataset
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


def _cmd_density(args: argparse.Namespace) -> int:
    from biasbench.generators import get as get_dataset
    from biasbench.ratios import config_name, parse_ratio
    from biasbench.results import density
    from biasbench.results.store import RunStore
    from biasbench.runconfig import get_protocol

    dataset = get_dataset(args.dataset).name
    ratio = config_name(parse_ratio(args.ratio))
    get_protocol(args.profile, dataset)
    records, warnings = RunStore(Path(args.results)).records()
    for w in (w for w in warnings if w.startswith("skipped")):  # a missing folder is the error below
        print(f"warning: {w}", file=sys.stderr)
    from biasbench.baselines import get as get_method, names as method_names

    chosen_by_sweep = {m for m in method_names() if get_method(m).uses_density and get_method(m).default_density}
    table = [s for s in density.scores(records, dataset, ratio, args.profile) if s.method in chosen_by_sweep]
    if not table:
        raise UserError(f"no sparse runs of {dataset} {ratio} under profile {args.profile!r} in {args.results}; "
                        f"run a sweep first: biasbench sweep --methods rigl rest --ratios {ratio} --densities sweep "
                        f"--profile {args.profile}")
    print(f"{'method':<8}{'density':>9}{'seeds':>7}{'valid':>9}{'test':>9}   (%, at each run's best-valid evaluation)")
    for s in table:
        print(f"{s.method:<8}{s.density:>9.4g}{s.n_seeds:>7}{s.valid_mean:>9.2f}{s.test_mean:>9.2f}")
    for method in sorted({s.method for s in table}):
        best = density.choose(table, method, args.min_seeds)
        if best is None:
            print(f"{method}: its densities share fewer than {args.min_seeds} seed(s) yet")
        else:
            seeds = " ".join(str(k) for k in sorted(density.common_seeds(table, method)))
            print(f"{method}: density {best.density:g} (best mean valid {best.valid_mean:.2f} over {best.n_seeds} "
                  f"seeds; chosen on valid only, on the seeds every density has: {seeds})")
    return 0


def _cmd_budget(args: argparse.Namespace) -> int:
    from biasbench import atomic
    from biasbench.baselines import canonical
    from biasbench.generators import get as get_dataset
    from biasbench.ratios import config_name, parse_ratio
    from biasbench.results import budget
    from biasbench.results.store import RunStore
    from biasbench.runconfig import get_protocol

    dataset = get_dataset(args.dataset).name
    ratio = config_name(parse_ratio(args.ratio))
    get_protocol(args.profile, dataset)
    methods = [canonical(m) for m in args.methods]
    if any(b < 1 for b in args.budgets):
        raise UserError("--budgets must be positive step counts")
    records, warnings = RunStore(Path(args.results)).records()
    for w in (w for w in warnings if w.startswith("skipped")):
        print(f"warning: {w}", file=sys.stderr)
    t = budget.table(records, dataset, ratio, methods, sorted(set(args.budgets)), args.profile)
    if t.empty:
        raise UserError(f"no runs of {', '.join(methods)} on {dataset} {ratio} under profile {args.profile!r} in "
                        f"{args.results}; see 'biasbench budget --help' for the sweeps that make them")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = (f"biasbench budget --results {args.results} --dataset {dataset} --ratio {ratio} --profile "
               f"{args.profile} --methods {' '.join(methods)} --budgets {' '.join(str(b) for b in args.budgets)} "
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
    results = Path(args.results)
    if (results / "runs").is_dir() or not args.csv:
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
    from biasbench.generators import ordered

    text = reproduction.markdown(rows, sources, ordered(), set(_method_names()))
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out, text)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    counts = {v: sum(r.verdict == v for r in rows) for v in (reproduction.HOLDS, reproduction.FAILS, reproduction.NOT_RUN)}
    print(f"wrote {out}: {counts[reproduction.HOLDS]} holds, {counts[reproduction.FAILS]} does not hold, "
          f"{counts[reproduction.NOT_RUN]} not run")
    return 0


def _dataset_folder(dataset: str, data_dir: str | None):
    from biasbench.generators import get
    from biasbench.hub.folder import DatasetFolder
    from biasbench.paths import data_root, dataset_dir

    gen = get(dataset)
    path = dataset_dir(data_root(data_dir), gen.name)
    if not path.is_dir():
        raise UserError(f"no generated {gen.name} in {path.parent}; run: biasbench generate {gen.name} (or pass --data-dir)")
    return gen, DatasetFolder(path, gen.name)


def _ratio_names(text: str | None) -> list[str] | None:
    from biasbench.ratios import config_name, parse_ratios

    return None if text is None or text.strip().lower() == "all" else [config_name(r) for r in parse_ratios(text)]


def _cmd_publish(args: argparse.Namespace) -> int:
    import tempfile

    from biasbench.hub import publish
    from biasbench.hub.remote import hub_repo_id

    gen, folder = _dataset_folder(args.dataset, args.data_dir)
    if args.repo_id is None and args.dry_run is None:
        raise UserError("--repo-id OWNER/NAME is required (or --dry-run DIR to only write the upload tree)")
    if args.repo_id is not None and hub_repo_id(f"hf://{args.repo_id}") is None:
        raise UserError(f"--repo-id {args.repo_id!r} is not OWNER/NAME")
    configs = publish.choose_configs(folder, _ratio_names(args.ratio))
    message = publish.commit_message(gen.name, configs)
    if getattr(gen, "licence_notice", None):
        print(gen.licence_notice)
    if args.dry_run is not None:
        files = publish.stage(folder, gen, configs, Path(args.dry_run))
        print(f"dry run: wrote the {len(files)} files that would be uploaded to {args.dry_run}")
        print(f"commit message: {message}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bb-publish-") as tmp:
        files = publish.stage(folder, gen, configs, Path(tmp) / "tree")
        url = publish.publish(Path(tmp) / "tree", args.repo_id, message, args.private, args.revision)
    print(f"published {len(files)} files of {gen.name} ({', '.join(c.name for c in configs)}) to {args.repo_id}: {url}")
    print(f'load with: datasets.load_dataset("{args.repo_id}", "{configs[0].name}")')
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from biasbench.export import export
    from biasbench.hub.publish import choose_configs

    gen, folder = _dataset_folder(args.dataset, args.data_dir)
    configs = choose_configs(folder, _ratio_names(args.ratio))
    report = export(folder, configs, args.format, Path(args.out))
    for piece, n in report.written.items():
        print(f"wrote {piece} ({n} images)")
    if report.skipped:
        print(f"already there with the same content: {', '.join(report.skipped)}")
    if args.format == "disent":
        print(f"DisEnt/REST: --data_dir {args.out} --dataset {gen.name} --percent {configs[0].name}")
    else:
        print(f"LfF: data_dir={args.out} (dataset_tag = the folder names above; LfF's 'valid' is our test split)")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from biasbench.hub import verify
    from biasbench.hub.remote import fetch, hub_repo_id
    from biasbench.parallel import default_workers

    repo = hub_repo_id(args.source)
    path = fetch(repo, args.revision) if repo else Path(args.source)
    checks = verify.verify(path)
    if args.regenerate:
        checks += verify.verify_by_regenerating(path, Path(args.source_dir) if args.source_dir else None, default_workers())
    for check in checks:
        print(check.line())
    bad = [c for c in checks if not c.ok]
    print(f"{args.source}: {'MISMATCH in ' + str(len(bad)) + ' check(s)' if bad else 'all checks OK'}")
    return 1 if bad else 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from biasbench.hub import preview
    from biasbench.hub.png import decode
    from biasbench.hub.parquet import read_split
    from biasbench.hub.read import find_split
    from biasbench.ratios import parse_ratio

    gen, folder = _dataset_folder(args.dataset, args.data_dir)
    paths, _ = find_split(folder, parse_ratio(args.ratio), "train")
    table = read_split(paths)
    images = table.column("image").combine_chunks().field("bytes")
    png = preview.render(lambda i: decode(images[i].as_py()), table.column("label").to_numpy(),
                         table.column("aligned").to_numpy(), len(gen.schema.label_names))
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: per class, a row of aligned and a row of conflicting training images")
    return 0


def _selection_rule(name: str) -> str:
    """argparse type: a model-selection rule's name (biasbench/results/selection.py), checked at parse time."""
    from biasbench.results import selection

    try:
        selection.get(name)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="biasbench",
        description=(
            "Deterministic datasets with spurious correlations (bias-conflicting ratios "
            "0.5/1/2/5%) and one common protocol to benchmark debiasing methods."
        ),
        epilog=(
            "examples:\n"
            "  biasbench generate cmnist --ratio 0.01\n"
            "  biasbench run --method reweighted_erm --seeds 3\n"
            "  biasbench leaderboard --results results --out leaderboard\n"
            "  biasbench sweep --methods all --ratios all --seeds 3 --launcher ray\n"
            "  biasbench report --results results   # -> leaderboard/REPRODUCTION.md\n"
            "\nrun 'biasbench COMMAND --help' for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"biasbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    datasets = ", ".join(_dataset_names())
    g = sub.add_parser(
        "generate",
        help="build a dataset at one or more bias-conflicting ratios",
        description=(
            "Build DATASET as a Hugging Face dataset folder ROOT/DATASET (parquet shards, a dataset "
            "card, manifest.json with checksums and content fingerprints). One config per ratio: "
            "0.5pct, 1pct, 2pct, 5pct; each has train, valid and test splits. Re-running an "
            "identical generation does nothing; an interrupted run leaves no half-built config.\n\n"
            f"datasets: {datasets}\n"
            f"ratios:   {_RATIO_HELP}; also '1%', '1pct', a comma list, 'all', or any fraction in (0, 1)"
        ),
        epilog=(
            "examples:\n"
            "  biasbench generate cmnist --ratio 0.01\n"
            "  biasbench generate cmnist --ratio 0.5%,5% --out ./data\n"
            "  biasbench generate cmnist --source-dir ~/mnist        # four IDX files, .gz or raw\n"
            "  biasbench generate bffhq --source-dir ~/ffhq          # FFHQ images + one label CSV (FFHQ-Aging's)\n"
            "  biasbench generate bffhq --ratio 0.5pct --source-dir ~/bffhq   # the BFFHQ release, ingested\n"
            "\nthen: python -c \"from datasets import load_dataset; "
            "print(load_dataset('ROOT/cmnist', '1pct'))\""
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("dataset", metavar="DATASET", help=f"one of: {datasets}")
    g.add_argument("--ratio", default="all", metavar="R", help="ratio(s) to build (default: all four)")
    g.add_argument(
        "--out",
        metavar="ROOT",
        help="root folder for datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)",
    )
    g.add_argument(
        "--source-dir",
        metavar="DIR",
        help="folder with the official source files (default: $BIASBENCH_SOURCES, else download them)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="0 builds the canonical dataset; another seed is another dataset, "
        "written to ROOT/DATASET-seedN (default: 0)",
    )
    g.add_argument("--force", action="store_true", help="rebuild configs that already exist")
    g.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept source files whose checksums differ from the official ones (the card says so)",
    )
    g.add_argument("--workers", type=int, metavar="N", help="processes for rendering (default: all cores)")
    g.set_defaults(func=_cmd_generate)

    from biasbench.protocol import PROFILES

    methods = ", ".join(_method_names())
    r = sub.add_parser(
        "run",
        help="train a method under the common protocol and record the results",
        description=(
            "Train METHOD on DATASET at each ratio and seed under a named protocol profile "
            "(every number in biasbench/protocol.py). Each run is recorded as one JSON file in "
            "RESULTS/runs/, keyed by a hash of its full config and the dataset fingerprint; a "
            "finished run is skipped, an interrupted one resumes from its last checkpoint. "
            "A missing dataset config is generated first.\n\n"
            f"methods:  {methods}\n"
            f"profiles: {', '.join(sorted(PROFILES))} (cpu: small budget for a 2-core machine; "
            "paper: the REST paper's text; rest-code: REST's released scripts)"
        ),
        epilog=(
            "examples:\n"
            "  biasbench run --method erm --ratio 1pct --seeds 1\n"
            "  biasbench run --method reweighted_erm --seeds 3 --profile cpu\n"
            "  biasbench run --method erm --steps 200 --results ./results   # a short budget (recorded)\n"
            "  biasbench run --method rest --ratio 1pct --seeds 3            # at the profile's density (valid-chosen)\n"
            "  biasbench run --method rigl --ratio 1pct --density sweep      # the 14 densities of REST Fig. 3"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--method", required=True, help=f"one of: {methods}")
    r.add_argument("--dataset", default="cmnist", help="dataset to train on (default: cmnist)")
    r.add_argument("--ratio", default="all", metavar="R", help="ratio(s), as for generate (default: all four)")
    r.add_argument("--seeds", type=int, default=3, metavar="N", help="number of seeds, from the profile's list (default: 3)")
    r.add_argument("--profile", choices=sorted(PROFILES), help="protocol profile (default: paper with a GPU, cpu without)")
    r.add_argument("--steps", type=int, metavar="N", help="override the profile's budget in optimizer steps")
    r.add_argument("--eval-every", type=int, metavar="N", help="override how often (steps) to evaluate and checkpoint")
    _add_numerics_options(r)
    r.add_argument("--beta", type=float, metavar="B", help="override the profile's reweighting beta")
    r.add_argument("--density", metavar="D",
                   help="sparse methods (rigl, rest): density of the prunable weights, a comma list, or 'sweep' for "
                        "REST's 14 densities 0.0005..0.9, or 'rest-published' for REST Table 2's per ratio (default: the "
                        "profile's density, chosen on validation by a sweep, else 0.1; see 'biasbench density')")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    r.add_argument("--data-dir", metavar="ROOT", help="root of generated datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)")
    r.add_argument("--data", metavar="PATH_OR_HUB_ID",
                   help="a dataset folder, or a Hub dataset (hf://OWNER/NAME or OWNER/NAME), instead of --data-dir")
    r.add_argument("--source-dir", metavar="DIR", help="sources for generating a missing dataset (as for generate)")
    r.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    r.add_argument("--restart", action="store_true", help="ignore (and overwrite) existing checkpoints of unfinished runs")
    r.set_defaults(func=_cmd_run)

    sw = sub.add_parser(
        "sweep",
        help="run a grid of methods x datasets x ratios x densities x seeds, locally, on Ray or on SLURM",
        description=(
            "Expand the grid into runs (the same configs and run ids as 'biasbench run'), skip the finished ones, "
            "print the plan (runs, done, to do) and run the rest with a launcher, with a progress bar over runs. "
            "Sparse methods (those that use a density) get one run per --densities value; dense methods ignore it. "
            "Interrupted runs resume from their checkpoints: re-running a sweep is always safe.\n\n"
            "launchers:\n"
            "  local  a process pool on this machine, one process per core (or --max-parallel), torch threads\n"
            "         split between them\n"
            "  ray    one Ray task per run on the cluster at --address (default: start a local one); each task\n"
            "         declares --cpus-per-run/--gpus-per-run and is retried if its worker or node is lost; records\n"
            "         come back to this driver, which writes them, so no shared file system is needed\n"
            "         (pip install 'biasbench[ray]')\n"
            "  slurm  one submitit job array (RESULTS must be on a shared file system); preempted or timed-out\n"
            "         tasks are requeued and resume from their checkpoints (pip install 'biasbench[slurm]')\n\n"
            f"methods:  {methods} (or all)\n"
            f"datasets: {datasets} (or all)"
        ),
        epilog=(
            "examples:\n"
            "  biasbench sweep --methods erm reweighted_erm --ratios all --seeds 3 --profile cpu\n"
            "  biasbench sweep --methods rigl rest --ratios 1pct --densities sweep --dry-run   # the plan only\n"
            "  biasbench sweep --methods all --launcher ray --address auto --cpus-per-run 2\n"
            "  biasbench sweep --methods all --datasets cifar10c --profile paper --launcher slurm \\\n"
            "      --gpus-per-run 1 --partition gpu --time-min 600 --max-parallel 16 --results /shared/results"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sw.add_argument("--methods", nargs="+", default=["all"], metavar="M", help="method names or 'all' (default: all)")
    sw.add_argument("--datasets", nargs="+", default=["cmnist"], metavar="D", help="dataset names or 'all' (default: cmnist)")
    sw.add_argument("--ratios", nargs="+", default=["all"], metavar="R", help="ratios as for generate, or 'all' (default: all four)")
    sw.add_argument("--seeds", type=int, default=3, metavar="N", help="number of seeds, from the profile's list (default: 3)")
    sw.add_argument("--densities", nargs="+", metavar="D",
                    help="sparse methods: densities, 'sweep' for REST's 14 (0.0005..0.9), or 'rest-published' (default: "
                         "the profile's density, chosen on validation)")
    sw.add_argument("--profile", choices=sorted(PROFILES), help="protocol profile (default: paper when runs get a GPU, cpu otherwise)")
    sw.add_argument("--launcher", choices=("local", "ray", "slurm"), default="local", help="where runs execute (default: local)")
    sw.add_argument("--max-parallel", type=int, metavar="K", help="runs at once (default: local: one per core, 1 on a GPU; ray/slurm: no cap)")
    sw.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    sw.add_argument("--device", default="auto", help="auto (decided where each run executes), cpu, cuda or cuda:N (default: auto)")
    sw.add_argument("--cpus-per-run", type=int, metavar="N", help="ray/slurm: CPUs (and torch threads) per run (default: 1)")
    sw.add_argument("--gpus-per-run", type=float, metavar="G", help="ray/slurm: GPUs per run (default: 1 with --device cuda, else 0)")
    sw.add_argument("--address", metavar="ADDR", help="ray: cluster address, e.g. auto or ray://head:10001 (default: start a local Ray)")
    sw.add_argument("--partition", metavar="P", help="slurm: partition")
    sw.add_argument("--time-min", type=int, default=240, metavar="M", help="slurm: time limit per task in minutes (default: 240)")
    sw.add_argument("--no-wait", action="store_true", help="slurm: submit and return; re-run the sweep later to see progress")
    sw.add_argument("--steps", type=int, metavar="N", help="override the profile's budget in optimizer steps (recorded)")
    sw.add_argument("--eval-every", type=int, metavar="N", help="override how often (steps) to evaluate and checkpoint")
    _add_numerics_options(sw)
    sw.add_argument("--beta", type=float, metavar="B", help="override the profile's reweighting beta")
    sw.add_argument("--data-dir", metavar="ROOT", help="root of generated datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)")
    sw.add_argument("--source-dir", metavar="DIR", help="sources for generating a missing dataset (as for generate)")
    sw.add_argument("--dry-run", action="store_true", help="print the plan and the runs to do; run nothing")
    sw.set_defaults(func=_cmd_sweep)

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
    lb.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    lb.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: ./leaderboard)")
    lb.add_argument("--selection", type=_selection_rule, default="valid", metavar="RULE",
                    help="model selection rule, applied to each record's history: valid (default), final, oracle, "
                         "last3 (mean of the last 3 evaluations) or valid@STEPS (best valid up to STEPS)")
    lb.add_argument("--name", default="leaderboard", metavar="NAME",
                    help="file name stem: OUT/NAME.csv and OUT/NAME.md (default: leaderboard), e.g. cmnist-cpu")
    lb.set_defaults(func=_cmd_leaderboard)

    plot = sub.add_parser("plot", help="plot run records (accuracy vs density, as REST Fig. 3)")
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
    dens.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    dens.add_argument("--profile", help="profile of the runs (needed only if the results hold several)")
    dens.add_argument("--selection", type=_selection_rule, default="valid", metavar="RULE",
                      help="model selection rule: valid (default), final, oracle, last3 or valid@STEPS")
    dens.add_argument("--out", metavar="FILE.png", help="output (default: RESULTS/density-DATASET-RATIO-PROFILE.png)")
    dens.set_defaults(func=_cmd_plot_density)

    dsel = sub.add_parser(
        "density",
        help="choose each sparse method's density on validation from a density sweep's records",
        description=(
            "Read a density sweep's run records and print, per sparse method and density, the mean valid score (the "
            "profile's selection metric at each run's best-valid evaluation) and, beside it, the test score; then the "
            "density with the best mean valid score per method (ties: the lower density). Test numbers are never "
            "used to choose. A profile's default density (`chosen_density` in biasbench/protocol.py) is set from this."
        ),
        epilog=(
            "example:\n"
            "  biasbench sweep --methods rigl rest --ratios 1pct --seeds 3 --densities sweep --profile cpu\n"
            "  biasbench density --ratio 1pct --profile cpu --min-seeds 3"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsel.add_argument("--dataset", default="cmnist", help="dataset (default: cmnist)")
    dsel.add_argument("--ratio", default="1pct", metavar="R", help="the sweep's ratio (default: 1pct)")
    dsel.add_argument("--profile", default="cpu", help="profile of the runs (default: cpu)")
    dsel.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    dsel.add_argument("--min-seeds", type=int, default=1, metavar="N",
                      help="only densities with at least N seeds may be chosen (default: 1)")
    dsel.set_defaults(func=_cmd_density)

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
            "  biasbench budget --ratio 1pct --budgets 600 1200 2400 4800 --out leaderboard --name cmnist-cpu-budget"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bud.add_argument("--dataset", default="cmnist", help="dataset (default: cmnist)")
    bud.add_argument("--ratio", default="1pct", metavar="R", help="ratio (default: 1pct)")
    bud.add_argument("--profile", default="cpu", help="profile of the runs (default: cpu)")
    bud.add_argument("--methods", nargs="+", default=["erm", "reweighted_erm", "rigl", "rest"], metavar="M",
                     help="methods (default: erm reweighted_erm rigl rest)")
    bud.add_argument("--budgets", nargs="+", type=int, default=[600, 1200, 2400, 4800], metavar="STEPS",
                     help="budgets in optimizer steps (default: 600 1200 2400 4800)")
    bud.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    bud.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: ./leaderboard)")
    bud.add_argument("--name", default="budget", metavar="NAME", help="file name stem (default: budget)")
    bud.set_defaults(func=_cmd_budget)

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
            "  biasbench report --csv leaderboard/cmnist-cpu.csv --out leaderboard/REPRODUCTION.md\n"
            "  biasbench sweep --methods erm rest --profile cpu && biasbench report   # measure, then compare"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("--results", default="results", metavar="DIR", help="results directory with run records (default: ./results)")
    rep.add_argument("--csv", action="append", metavar="FILE",
                     help="a leaderboard CSV (from 'biasbench leaderboard') to include; repeatable")
    rep.add_argument("--out", default="leaderboard/REPRODUCTION.md", metavar="FILE",
                     help="output file (default: leaderboard/REPRODUCTION.md)")
    rep.set_defaults(func=_cmd_report)

    pub = sub.add_parser(
        "publish",
        help="upload a generated dataset to the Hugging Face Hub (one commit)",
        description=(
            "Upload ROOT/DATASET (the chosen configs, their shards, previews, card and manifest) to a Hub "
            "dataset repo in one commit whose message names the biasbench version and content fingerprints. "
            "The token comes from HF_TOKEN or `hf auth login` and is never printed or written. "
            "Recommended repo names: biasbench/colored-mnist, biasbench/corrupted-cifar10, biasbench/bffhq."
        ),
        epilog="examples:\n  biasbench publish cmnist --repo-id me/colored-mnist\n"
               "  biasbench publish cmnist --ratio 1pct --dry-run ./upload   # write the tree, upload nothing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument("dataset", metavar="DATASET")
    pub.add_argument("--ratio", metavar="R", help="config(s) to publish (default: all on disk)")
    pub.add_argument("--repo-id", metavar="OWNER/NAME", help="Hub dataset repo (created if missing)")
    pub.add_argument("--private", action="store_true", help="create the repo as private")
    pub.add_argument("--revision", metavar="BRANCH", help="branch to commit to (created if missing)")
    pub.add_argument("--dry-run", metavar="DIR", help="only write the tree that would be uploaded into DIR")
    pub.add_argument("--data-dir", metavar="ROOT", help="root of generated datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)")
    pub.set_defaults(func=_cmd_publish)

    exp = sub.add_parser(
        "export",
        help="write a generated dataset in DisEnt/REST's folder layout or LfF's .npy layout",
        description=(
            "Write configs of ROOT/DATASET so that existing research code reads them unchanged. "
            "disent: OUT/DATASET/{pct}/align/<class>/<id>_<label>_<bias>.png, conflict/, valid/, and "
            "OUT/DATASET/test/ (DisEnt's and REST's --data_dir OUT). lff: OUT/<LfF dataset tag>/{train,valid}/"
            "images.npy + attrs.npy + attr_names.pkl, LfF's valid being our test split (our valid goes to "
            "valid_heldout/). Identical pieces already in OUT are skipped, different ones refused."
        ),
        epilog="examples:\n  biasbench export cmnist --ratio 1pct --format disent --out ./disent-data\n"
               "  biasbench export cifar10c --format lff --out ./lff-data   # all configs on disk",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exp.add_argument("dataset", metavar="DATASET")
    exp.add_argument("--ratio", metavar="R", help="config(s) to export (default: all on disk)")
    exp.add_argument("--format", required=True, choices=("disent", "lff"), help="target layout")
    exp.add_argument("--out", required=True, metavar="DIR", help="output folder (the reference code's data dir)")
    exp.add_argument("--data-dir", metavar="ROOT", help="root of generated datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)")
    exp.set_defaults(func=_cmd_export)

    ver = sub.add_parser(
        "verify",
        help="check a dataset copy (folder or Hub repo) against its manifest",
        description=(
            "Recompute the sha256 of every file and the content fingerprint of every split of SOURCE and "
            "compare them with its manifest.json; one line per config, exit code 1 on any mismatch. SOURCE is "
            "a dataset folder or a Hub dataset id (OWNER/NAME or hf://OWNER/NAME). --regenerate also rebuilds "
            "the dataset from sources and compares fingerprints."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("source", metavar="SOURCE")
    ver.add_argument("--regenerate", action="store_true", help="also rebuild from sources and compare")
    ver.add_argument("--source-dir", metavar="DIR", help="sources for --regenerate (as for generate)")
    ver.add_argument("--revision", metavar="REV", help="Hub revision (branch, tag or commit)")
    ver.set_defaults(func=_cmd_verify)

    pre = sub.add_parser("preview", help="draw aligned and conflicting examples per class (PNG)",
                         description="Write the picture the card shows: per class, a row of the first 8 bias-aligned and "
                                     "a row of the first 8 bias-conflicting training images of one config.")
    pre.add_argument("dataset", metavar="DATASET")
    pre.add_argument("--ratio", required=True, metavar="R")
    pre.add_argument("--out", required=True, metavar="FILE.png")
    pre.add_argument("--data-dir", metavar="ROOT", help="root of generated datasets")
    pre.set_defaults(func=_cmd_preview)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UserError as exc:
        print(f"biasbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left in place; re-run to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
