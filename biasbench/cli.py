"""The `biasbench` command: the only place that parses arguments and prints."""

from __future__ import annotations

import argparse
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
        print(message, file=sys.stderr)

    def bar(self, total: int, desc: str, unit: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=None, leave=False)


def _dataset_names() -> list[str]:
    from biasbench.generators import names

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
            "  biasbench generate cmnist --ratio all --source-dir ../shared/data/mnist\n"
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
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left in place; re-run to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
