"""`biasbench generate`: build a dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from biasbench.errors import UserError
from biasbench.protocol import CONFLICT_RULES
from biasbench.cli.common import _TqdmReporter, _dataset_names, _RATIO_HELP


def _cmd_generate(args: argparse.Namespace) -> int:
    from biasbench.datasets import get
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
        conflicts=args.conflicts,
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


def register(sub) -> None:
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
            "  biasbench generate cmnist --conflicts random          # random conflicting images: ROOT/cmnist-random\n"
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
    g.add_argument(
        "--conflicts",
        choices=CONFLICT_RULES,
        help="which training images are bias-conflicting (cmnist, cifar10c): 'lff' (default, the field's data: "
        "LfF's make_dataset.py rule, the first and last images of each class in the source file) or 'random' "
        "(a seeded random draw of the same count, written to ROOT/DATASET-random)",
    )
    g.add_argument("--force", action="store_true", help="rebuild configs that already exist")
    g.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept source files whose checksums differ from the official ones (the card says so)",
    )
    g.add_argument("--workers", type=int, metavar="N", help="processes for rendering (default: all cores)")
    g.set_defaults(func=_cmd_generate)

