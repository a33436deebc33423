"""`--log tensorboard|wandb` for `run` and `sweep`: mirror finished runs' histories into a dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_log(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", choices=("tensorboard", "wandb"), metavar="SINK",
                        help="also mirror each finished run's history (valid/test metrics, loss, lr per evaluation) "
                             "to tensorboard or wandb (offline), under --log-dir; needs that package installed. "
                             "The run id and the JSON record do not change")
    parser.add_argument("--log-dir", metavar="DIR", help="where --log writes (default: RESULTS/logs)")


def check(args: argparse.Namespace) -> None:
    """Before anything trains: a requested sink's package is importable (one-line error otherwise)."""
    if getattr(args, "log", None):
        from biasbench.results import sinks

        sinks.load(args.log)


def mirror(args: argparse.Namespace, records: list[dict]) -> None:
    if not getattr(args, "log", None):
        return
    from biasbench.results import sinks

    log_dir = Path(args.log_dir or Path(args.results) / "logs")
    written = sum(sinks.mirror(r, args.log, log_dir) for r in records)
    print(f"{args.log}: mirrored {written} run(s) to {log_dir} ({len(records) - written} mirrored before)")
