"""The `biasbench` command: the only place that parses arguments and prints."""

from __future__ import annotations

import argparse
import os
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


def _cmd_run(args: argparse.Namespace) -> int:
    from biasbench.baselines import get as get_method
    from biasbench.generators import get as get_dataset
    from biasbench.paths import data_root
    from biasbench.ratios import parse_ratios
    from biasbench.results import leaderboard
    from biasbench.runconfig import get_protocol, profile_seeds
    from biasbench.runner import RunRequest, run_many

    get_method(args.method)
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
    )
    records = run_many(request, _TqdmReporter())
    runs, _ = leaderboard.runs_table(records, "valid")
    table = leaderboard.aggregate(runs, "valid")
    print(f"\n{args.method} on {gen.name}, profile {profile}; test metrics (%) at the best-valid evaluation, "
          f"mean ± std over {len(seeds)} seed(s):")
    metrics = leaderboard.METRICS
    print(f"{'ratio':<8}" + "".join(f"{m:>18}" for m in metrics))
    for _, row in table.iterrows():
        cells = "".join(f"{leaderboard.cell(row[f'test_{m}_mean'], row[f'test_{m}_std']):>18}" for m in metrics)
        print(f"{row['ratio']:<8}{cells}")
    print(f"records in {Path(args.results) / 'runs'}; 'biasbench leaderboard --results {args.results}' aggregates them")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from biasbench.results import leaderboard
    from biasbench.results.store import RunStore

    records, warnings = RunStore(Path(args.results)).records()
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    runs, more = leaderboard.runs_table(records, args.selection)
    for w in more:
        print(f"warning: {w}", file=sys.stderr)
    table = leaderboard.aggregate(runs, args.selection)
    try:
        csv_path, md_path = leaderboard.write(table, Path(args.out))
    except OSError as exc:
        raise UserError(f"cannot write the leaderboard to {args.out}: {exc.strerror or exc}") from None
    print(leaderboard.markdown(table))
    print(f"wrote {csv_path} and {md_path} ({len(runs)} runs, {len(table)} rows)")
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
            "  biasbench run --method erm --steps 200 --results ./results   # a short budget (recorded)"
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
    r.add_argument("--beta", type=float, metavar="B", help="override the profile's reweighting beta")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    r.add_argument("--data-dir", metavar="ROOT", help="root of generated datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)")
    r.add_argument("--data", metavar="PATH_OR_HUB_ID",
                   help="a dataset folder, or a Hub dataset (hf://OWNER/NAME or OWNER/NAME), instead of --data-dir")
    r.add_argument("--source-dir", metavar="DIR", help="sources for generating a missing dataset (as for generate)")
    r.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    r.add_argument("--restart", action="store_true", help="ignore (and overwrite) existing checkpoints of unfinished runs")
    r.set_defaults(func=_cmd_run)

    lb = sub.add_parser(
        "leaderboard",
        help="aggregate run records into leaderboard.csv and leaderboard.md",
        description=(
            "Read every run record in RESULTS/runs, aggregate over seeds (mean ± std) per dataset, ratio, "
            "method, profile and variant, and write OUT/leaderboard.csv and OUT/leaderboard.md. Test "
            "metrics are taken at the evaluation a model-selection rule picks: valid (default), final, or "
            "oracle (best test, as DisEnt reports; only for reproducing published numbers)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lb.add_argument("--results", default="results", metavar="DIR", help="results directory (default: ./results)")
    lb.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: ./leaderboard)")
    lb.add_argument("--selection", choices=("valid", "final", "oracle"), default="valid", help="model selection rule (default: valid)")
    lb.set_defaults(func=_cmd_leaderboard)

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
