"""`biasbench run` and `biasbench sweep`: one execution path (plan -> launcher -> store)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from biasbench import overrides
from biasbench.errors import UserError
from biasbench.cli import logsink
from biasbench.cli.common import (
    _TqdmReporter, _dataset_names, _method_names, _device, _check_dataset_folder, _amp, _names, add_data_dir,
    add_results,
)


def _default_profile(gpu: bool, why_gpu: str, why_not: str) -> str:
    """run's and sweep's one default: the full `paper` budget where runs get a GPU, `cpu` otherwise (said)."""
    profile = "paper" if gpu else "cpu"
    print(f"profile: {profile} ({why_gpu if gpu else why_not})")
    return profile


def _cmd_run(args: argparse.Namespace) -> int:
    from biasbench.methods import get as get_method
    from biasbench.datasets import get as get_dataset
    from biasbench.paths import data_root
    from biasbench.ratios import parse_ratios
    from biasbench.results import leaderboard
    from biasbench.launch import LaunchOptions, grid, make, sweep
    from biasbench.results.store import RunStore
    from biasbench.runconfig import get_protocol, parse_densities, profile_seeds

    from biasbench.methods import canonical

    args.method = canonical(args.method)  # `REST` and `rest` are one method: one run id, one row
    method_cls = get_method(args.method)
    densities = parse_densities(args.density)
    if densities != [None] and not method_cls.uses_density:
        raise UserError(f"--density applies to sparse methods only; {args.method} is dense")
    given = overrides.from_args(args)
    overrides.validate(given, {args.method: method_cls})  # each value checked, and refused where it does not apply
    sets = overrides.parse_sets(args.sets, {args.method: method_cls})
    gen = get_dataset(args.dataset)
    ratios = parse_ratios(args.ratio)
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    device = _device(args.device)
    logsink.check(args)
    profile = args.profile or _default_profile(device.type == "cuda", "a GPU is available",
                                               "no GPU here; --profile paper for the full budget")
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
    _amp(given, device.type)
    # One execution path: `run` is a one-method sweep (plan -> local launcher in this process -> store).
    spec = grid.SweepSpec(
        methods=[args.method], datasets=[gen.name], ratios=ratios, n_seeds=args.seeds, profile=profile,
        data_root=data_root(args.data_dir), results=Path(args.results), densities=tuple(densities), overrides=given,
        sets=sets, source_dir=Path(args.source_dir) if args.source_dir else None, data_path=data_path,
        restart=args.restart,
    )
    reporter = _TqdmReporter()
    plan = grid.expand(spec, reporter)
    for run in plan.runs:
        if run.run_id in plan.done:
            reporter.info(f"{run.run_id}: finished before, skipped")
    launcher = make("local", LaunchOptions(Path(args.results), str(device), max_parallel=1, reporter=reporter))
    outcome = sweep.execute(plan, launcher, Path(args.results))
    if outcome.errors:
        raise outcome.errors[0]  # a UserError (a damaged checkpoint) is the CLI's one-line message; a bug keeps its traceback
    store = RunStore(Path(args.results))
    records = [r for r in (store.load(run.run_id) for run in plan.runs) if r is not None]
    if not records:
        return 1
    logsink.mirror(args, records)
    runs, _ = leaderboard.runs_table(records, "valid")
    table = leaderboard.aggregate(runs, "valid")
    print(f"\n{args.method} on {gen.name}, profile {profile}; test metrics (%) at the best-valid evaluation "
          f"(selection reads {leaderboard.labels_caption(table)} labels), mean ± std over {len(seeds)} seed(s):")
    print(leaderboard.summary_text(table, method_cls.uses_density))
    print(f"records in {Path(args.results) / 'runs'}; 'biasbench leaderboard --results {args.results}' aggregates them")
    return 0


def _sweep_launcher(args: argparse.Namespace, results: Path):
    for flag, value, low in (("--max-parallel", args.max_parallel, 1), ("--cpus-per-run", args.cpus_per_run, 1),
                             ("--gpus-per-run", args.gpus_per_run, 0)):
        if value is not None and value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
    gpus = args.gpus_per_run if args.gpus_per_run is not None else (1 if args.device.startswith("cuda") else 0)
    from biasbench.launch import LaunchOptions, make

    return make(args.launcher, LaunchOptions(results, args.device, args.max_parallel, args.cpus_per_run or 1, gpus,
                                             args.address, args.partition, args.time_min, wait=not args.no_wait))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from biasbench.launch import grid, sweep
    from biasbench.paths import data_root
    from biasbench.ratios import parse_ratios
    from biasbench.results.estimate import estimate
    from biasbench.results.store import RunStore
    from biasbench.runconfig import parse_densities

    from biasbench.methods import canonical, get as get_method

    methods = list(dict.fromkeys(canonical(m) for m in _names(args.methods, _method_names(), "methods")))
    datasets = _names(args.datasets, _dataset_names(), "datasets")
    ratios = parse_ratios(",".join(args.ratios))
    densities = tuple(parse_densities(",".join(args.densities) if args.densities else None))
    classes = {m: get_method(m) for m in methods}
    given = overrides.from_args(args)
    overrides.validate(given, classes)
    sets = overrides.parse_sets(args.sets, classes)
    if args.launcher == "local":
        _device(args.device)  # checks that it exists here: refused up front, not once per run
    elif args.device not in ("auto", "cpu") and not (args.device == "cuda" or re.fullmatch(r"cuda:\d+", args.device)):
        raise UserError(f"--device {args.device!r} is not a device (use auto, cpu, cuda or cuda:N)")
    results = Path(args.results)
    logsink.check(args)
    launcher = _sweep_launcher(args, results)  # a missing extra fails before any planning
    on_gpu = (args.device.startswith("cuda") or (args.gpus_per_run or 0) > 0
              or (args.launcher == "local" and args.device == "auto" and _device("auto").type == "cuda"))
    profile = args.profile or _default_profile(on_gpu, "runs get a GPU",
                                               "no GPU asked for; --profile paper for the full budget")
    _amp(given, "cuda" if args.device.startswith("cuda") else args.device)
    spec = grid.SweepSpec(
        methods=methods, datasets=datasets, ratios=ratios, n_seeds=args.seeds, profile=profile,
        data_root=data_root(args.data_dir), results=results, densities=densities, overrides=given, sets=sets,
        source_dir=Path(args.source_dir) if args.source_dir else None,
    )
    plan = grid.expand(spec, _TqdmReporter())
    todo = plan.todo
    print(f"plan: {len(plan.runs)} runs, {len(plan.done)} done, {len(todo)} to do")
    if todo:
        from biasbench.launch.local import pool_shape

        at_once = pool_shape(len(todo), args.max_parallel, args.device)[0] if args.launcher == "local" else 1
        line = estimate([run.config for run in todo], RunStore(results).records()[0],
                        "cuda" if on_gpu else "cpu").describe(at_once)
        if line:
            print(line)
    if args.dry_run or not todo:
        for run in todo if args.dry_run else []:
            print(f"  to do: {run.label}  ({run.run_id})")
        print("nothing to do" if not todo else "dry run: nothing was started")
        if not args.dry_run:
            logsink.mirror(args, [r for r in map(RunStore(results).load, (run.run_id for run in plan.runs)) if r])
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
    logsink.mirror(args, [r for r in map(RunStore(results).load, (run.run_id for run in plan.runs)) if r])
    print(f"sweep: {len(outcome.finished)} finished, {len(outcome.failed)} failed; records in {results / 'runs'}; "
          f"'biasbench leaderboard --results {results}' aggregates them")
    return 1 if outcome.failed else 0


def _add_seeds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="number of seeds, from the profile's list (default: 3)")


def _add_source_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", metavar="DIR", help="sources for generating a missing dataset (as for generate)")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    """What run and sweep may override in a profile (biasbench/overrides.py); each is recorded (in the run id
    and the variant)."""
    overrides.add_arguments(parser)


def register(sub) -> None:
    _add_run(sub)
    _add_sweep(sub)
    _add_methods(sub)


def _cmd_methods(args: argparse.Namespace) -> int:
    import dataclasses

    from biasbench.datasets import DATASETS, get as get_dataset
    from biasbench.methods import display, get as get_method
    from biasbench.runconfig import get_protocol

    gen = get_dataset(args.dataset)
    info, protocol = DATASETS.info(gen.name), get_protocol(args.profile, gen.name)
    print(f"methods under profile {args.profile} on {gen.name} (--set METHOD.FIELD=V changes a number):")
    for name in _method_names():
        cls = get_method(name)
        uses = [w for w, on in (("bias labels", cls.uses_bias_labels), ("--beta", cls.uses_beta),
                                ("--density", cls.uses_density)) if on]
        print(f"  {name} ({display(name).name}){': uses ' + ', '.join(uses) if uses else ''}")
        try:
            params = cls.own_params(args.profile, info, protocol)
        except UserError as e:
            print(f"      (no setting: {e})")
            continue
        for f in dataclasses.fields(params) if params is not None else ():
            print(f"      {name}.{f.name} = {getattr(params, f.name)}")
    return 0


def _add_methods(sub) -> None:
    from biasbench.protocol import PROFILES

    m = sub.add_parser("methods", help="list the methods and their own numbers (what --set can change)",
                       description="List every method, what it trains with, and its own numbers under a profile "
                                   "and dataset: the fields 'run --set METHOD.FIELD=V' and 'sweep --set' change.",
                       epilog="example:\n  biasbench methods --profile disent\n"
                              "  biasbench run --method lff --profile disent --set lff.q=0.5,0.9 --seeds 1",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--profile", choices=sorted(PROFILES), default="cpu", help="protocol profile (default: cpu)")
    m.add_argument("--dataset", default="cmnist", help="dataset (default: cmnist)")
    m.set_defaults(func=_cmd_methods)


def _add_run(sub) -> None:
    from biasbench.protocol import PROFILES

    methods = ", ".join(_method_names())
    r = sub.add_parser(
        "run",
        help="train a method under the common protocol and record the results",
        description=(
            "Train METHOD on DATASET at each ratio and seed under a named protocol profile "
            "(every number in biasbench/protocol/). Each run is recorded as one JSON file in "
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
    _add_seeds(r)
    r.add_argument("--profile", choices=sorted(PROFILES), help="protocol profile (default: paper with a GPU, cpu without)")
    _add_overrides(r)
    r.add_argument("--density", metavar="D",
                   help="sparse methods (rigl, rest): density of the prunable weights, a comma list, or 'sweep' for "
                        "REST's 14 densities 0.0005..0.9, or 'rest-published' for REST Table 2's per ratio (default: the "
                        "profile's density, chosen on validation by a sweep, else 0.1; see 'biasbench density')")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    add_data_dir(r)
    r.add_argument("--data", metavar="PATH_OR_HUB_ID",
                   help="a dataset folder, or a Hub dataset (hf://OWNER/NAME or OWNER/NAME), instead of --data-dir")
    _add_source_dir(r)
    logsink.add_log(r)
    add_results(r)
    r.add_argument("--restart", action="store_true", help="ignore (and overwrite) existing checkpoints of unfinished runs")
    r.set_defaults(func=_cmd_run)


def _add_sweep(sub) -> None:
    from biasbench.protocol import PROFILES

    datasets = ", ".join(_dataset_names())
    methods = ", ".join(_method_names())
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
            "         (pip install 'biasbench-spurious[ray]')\n"
            "  slurm  one submitit job array (RESULTS must be on a shared file system); preempted or timed-out\n"
            "         tasks are requeued and resume from their checkpoints (pip install 'biasbench-spurious[slurm]')\n\n"
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
    sw.add_argument("--ratios", nargs="+", default=["all"], metavar="R",
                    help="ratios as for generate, or 'all' (default: all four)")
    _add_seeds(sw)
    sw.add_argument("--densities", nargs="+", metavar="D",
                    help="sparse methods: densities, 'sweep' for REST's 14 (0.0005..0.9), or 'rest-published' (default: "
                         "the profile's density, chosen on validation)")
    sw.add_argument("--profile", choices=sorted(PROFILES),
                    help="protocol profile (default: paper when runs get a GPU, cpu otherwise)")
    from biasbench.launch import LAUNCHERS

    sw.add_argument("--launcher", choices=LAUNCHERS.ordered(), default="local", help="where runs execute (default: local)")
    sw.add_argument("--max-parallel", type=int, metavar="K",
                    help="runs at once (default: local: one per core, 1 on a GPU; ray/slurm: no cap)")
    add_results(sw)
    sw.add_argument("--device", default="auto",
                    help="auto (decided where each run executes), cpu, cuda or cuda:N (default: auto)")
    sw.add_argument("--cpus-per-run", type=int, metavar="N", help="ray/slurm: CPUs (and torch threads) per run (default: 1)")
    sw.add_argument("--gpus-per-run", type=float, metavar="G",
                    help="ray/slurm: GPUs per run (default: 1 with --device cuda, else 0)")
    sw.add_argument("--address", metavar="ADDR",
                    help="ray: cluster address, e.g. auto or ray://head:10001 (default: start a local Ray)")
    sw.add_argument("--partition", metavar="P", help="slurm: partition")
    sw.add_argument("--time-min", type=int, default=240, metavar="M", help="slurm: time limit per task in minutes (default: 240)")
    sw.add_argument("--no-wait", action="store_true", help="slurm: submit and return; re-run the sweep later to see progress")
    _add_overrides(sw)
    add_data_dir(sw)
    _add_source_dir(sw)
    logsink.add_log(sw)
    sw.add_argument("--dry-run", action="store_true", help="print the plan and the runs to do; run nothing")
    sw.set_defaults(func=_cmd_sweep)
