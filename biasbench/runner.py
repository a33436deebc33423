"""Running one planned run: its data, the trainer, its record in the run store.

Every launcher's task (launch/task.py) calls `execute` with a run the plan
(launch/grid.py) resolved; `biasbench run` and `biasbench sweep` both reach it
through a plan and a launcher, so there is one way to train and to name a run.
"""

from __future__ import annotations

import platform
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import torch

from biasbench import __version__, atomic
from biasbench import data as tensors
from biasbench.errors import UserError
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.paths import dataset_dir
from biasbench.progress import SILENT, Reporter
from biasbench.ratios import config_name
from biasbench.results.store import RECORD_FORMAT, RunStore


def git_commit() -> str | None:
    """The biasbench checkout's commit (with '+dirty' for uncommitted changes), if it is one: an installed
    wheel has none, even in a venv inside some other git work tree."""
    here = Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             timeout=5)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != here.parent:
            return None
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def ensure_configs(dataset: str, source, ratios: list[Decimal], reporter: Reporter) -> DatasetFolder:
    """The dataset folder holding every ratio, generating the missing ones first (in one go) under a generated
    root; a given folder (`source.root` None: `run --data`) is never generated into."""
    from biasbench.generators.build import generate
    from biasbench.parallel import default_workers

    if source.root is None:
        folder = DatasetFolder(source.path, dataset)
        have = [c.name for c in folder.configs()]
        missing = [config_name(r) for r in ratios if config_name(r) not in have]
        if missing:
            raise UserError(f"{source.path} has no config {', '.join(missing)} (have: {', '.join(have) or 'none'})")
        return folder
    folder = DatasetFolder(dataset_dir(source.root, dataset), dataset)
    have = {c.name for c in folder.configs()}
    missing = [r for r in ratios if config_name(r) not in have]
    if not missing:
        return folder
    names = ", ".join(config_name(r) for r in missing)
    reporter.info(f"{dataset} {names} not in {source.root}: generating first")
    try:
        generate(dataset, missing, source.root, 0, source.source_dir, workers=default_workers(), reporter=reporter)
    except UserError as exc:
        raise UserError(f"{dataset} {names} is not generated in {source.root} and cannot be: {exc}") from None
    return folder


def load_run_data(folder: DatasetFolder, ratio: Decimal):
    from biasbench.training.trainer import RunData

    from biasbench.dataset_format.read import check_ranges

    splits = {s: tensors.load(folder.dataset, ratio, s, path=folder.path) for s in ("train", "valid", "test")}
    config = next(c for c in folder.configs() if c.name == config_name(ratio))
    schema = _schema_sizes(folder.dataset)
    for name, split in splits.items():  # a forged split (fingerprint recomputed) with labels outside the schema
        check_ranges(split.labels.numpy(), split.bias.numpy(), schema, f"{folder.path} {config.name} {name}")
    return RunData(splits["train"], splits["valid"], splits["test"], *schema), config.fingerprint


def _schema_sizes(dataset: str) -> tuple[int, int]:
    from biasbench.datasets import get

    schema = get(dataset).schema
    return len(schema.label_names), len(schema.bias_names)


def run_one(run, run_data, store: RunStore, device: torch.device, reporter: Reporter, data_path: Path) -> dict:
    from biasbench.methods import get as get_method
    from biasbench.training.trainer import train

    cfg = run.config
    t0 = time.perf_counter()
    result = train(cfg, run_data, get_method(cfg.method), device, store.checkpoint_path(run.run_id), reporter,
                   run.restart)
    record = {
        "format": RECORD_FORMAT,
        "run_id": run.run_id,
        "method": cfg.method,
        "dataset": cfg.dataset,
        "ratio": cfg.ratio,
        "seed": cfg.seed,
        "profile": cfg.profile,
        "variant": cfg.variant(),
        "config": cfg.to_dict(),
        **({"density_rule": cfg.density_rule} if cfg.density_rule is not None else {}),
        "data": {"path": str(data_path), "fingerprint": run.fingerprint},
        "biasbench_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": _device_name(device),
        "wall_time_s": time.perf_counter() - t0,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **result,
    }
    store.save(record)
    return record


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def execute(run, device: torch.device, reporter: Reporter = SILENT) -> dict:
    """Train (or resume, or skip) one planned run (launch/grid.PlannedRun) and return its record. The run
    carries its resolved config: nothing is re-resolved here. A dataset whose content differs from the one
    the run was planned with is refused before training."""
    from biasbench.ratios import ratio_from_config

    store = RunStore(run.results)
    store.ensure_writable()
    lock = store.checkpoint_path(run.run_id).with_suffix(".lock")
    # One process per run id at a time: a second identical `run` waits, then finds the record and skips.
    with atomic.locked(lock):
        done = store.load(run.run_id)  # --restart only discards checkpoints, never finished runs
        if done is not None:
            reporter.info(f"{run.run_id}: finished before, skipped")
            return done
        ratio = ratio_from_config(run.config.ratio)
        folder = ensure_configs(run.config.dataset, run.data, [ratio], reporter)
        run_data, fingerprint = load_run_data(folder, ratio)
        if fingerprint != run.fingerprint:
            raise UserError(f"{run.label}: the {run.config.dataset} {run.config.ratio} in {folder.path} (fingerprint "
                            f"{fingerprint[:12]}) is not the one the run was planned with ({run.fingerprint[:12]})")
        record = run_one(run, run_data, store, device, reporter, folder.path)
    lock.unlink(missing_ok=True)
    return record
