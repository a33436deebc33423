"""What every command shares: the parser class, the progress reporter, option helpers, name checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def bar(self, total: int, desc: str, unit: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=None, leave=False)


def _dataset_names() -> list[str]:
    from biasbench.datasets import names

    return names()


def _method_names() -> list[str]:
    from biasbench.methods import names

    return names()


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"--device {name!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):  # mps, meta, xla...: the trainer and its numerics are CPU and CUDA only
        raise UserError(f"--device {name}: biasbench trains on cpu or cuda only (use auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "cpu" and device.index not in (None, 0):
        raise UserError(f"--device {name!r} is not a device (use auto, cpu, cuda or cuda:N)")
    return device


def _check_dataset_folder(path: Path, dataset: str) -> None:
    import json

    manifest = path / "manifest.json"
    try:
        found = json.loads(manifest.read_text()).get("dataset")
    except (OSError, ValueError):
        raise UserError(f"{path} is not a generated dataset folder (no readable manifest.json)") from None
    if found != dataset:
        raise UserError(f"{path} holds {found!r}, not {dataset!r}; pass --dataset {found}")


def _amp(given: dict, device_type: str) -> str | None:
    """--amp is a CUDA choice: refused up front on a CPU run instead of failing inside it."""
    if given.get("amp") is not None and device_type == "cpu":
        raise UserError("--amp needs --device cuda (autocast is for CUDA runs)")
    return given.get("amp")


def _names(values: list[str], known: list[str], what: str) -> list[str]:
    """--methods/--datasets: names (space or comma separated) or 'all'."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise UserError(f"no {what} given: name them or pass 'all'")
    return list(known) if [n.lower() for n in names] == ["all"] else list(dict.fromkeys(names))


def _dataset_folder(dataset: str, data_dir: str | None):
    from biasbench.datasets import get
    from biasbench.dataset_format.folder import DatasetFolder
    from biasbench.paths import data_root, dataset_dir

    gen = get(dataset)
    path = dataset_dir(data_root(data_dir), gen.name)
    if not path.is_dir():
        raise UserError(f"no generated {gen.name} in {path.parent}; run: biasbench generate {gen.name} (or pass --data-dir)")
    return gen, DatasetFolder(path, gen.name)


def _ratio_names(text: str | None) -> list[str] | None:
    from biasbench.ratios import config_name, parse_ratios

    return None if text is None or text.strip().lower() == "all" else [config_name(r) for r in parse_ratios(text)]


def _selection_rule(name: str) -> str:
    """argparse type: a model-selection rule's name (biasbench/results/selection.py), checked at parse time."""
    from biasbench.results import selection

    try:
        selection.get(name)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """--data-dir, the one wording every command that reads generated datasets uses."""
    parser.add_argument("--data-dir", metavar="ROOT",
                        help="root of generated datasets (default: $BIASBENCH_DATA, else ~/.cache/biasbench/datasets)")


def add_results(parser: argparse.ArgumentParser, what: str = "results directory") -> None:
    """--results, the run store a command reads or writes."""
    parser.add_argument("--results", default="results", metavar="DIR", help=f"{what} (default: ./results)")


def add_force(parser: argparse.ArgumentParser, what: str) -> None:
    """--force for a command whose output may already hold results: without it, an output is never replaced by
    one with fewer rows or measured cells (a mistyped --results would otherwise wipe a committed table)."""
    parser.add_argument("--force", action="store_true",
                        help=f"replace {what} even when the new result has fewer rows than the old one")
