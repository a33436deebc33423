"""Running a method over ratios and seeds: data, configs, the trainer, the run store.

Every launcher's task (launch/task.py) calls `run_many` for one ratio and one
seed; `biasbench run` and `biasbench sweep` both reach it through a plan and a
launcher, so there is one way to train and to name a run.
"""

from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import dataclass
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
from biasbench.runconfig import RunConfig


@dataclass
class RunRequest:
    method: str
    dataset: str
    ratios: list[Decimal]
    seeds: list[int]
    profile: str
    data_root: Path
    results: Path
    device: torch.device
    steps: int | None = None
    beta: float | None = None
    eval_every: int | None = None
    source_dir: Path | None = None
    restart: bool = False
    data_path: Path | None = None  # a given dataset folder (local or Hub snapshot): never generated into
    density: float | str | None = None  # sparse methods: a density or runconfig.REST_PUBLISHED (None: the default)
    amp: str | None = None  # CUDA: autocast dtype ("bf16"), recorded in the run id
    cudnn_benchmark: bool = False  # CUDA: autotuned cuDNN (not bit-reproducible), recorded in the run id
    channels_last: bool = True  # memory format of inputs and model (False: contiguous), recorded when changed


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


def ensure_configs(req: RunRequest, reporter: Reporter) -> DatasetFolder:
    """The dataset folder holding every requested ratio, generating the missing ones first (in one go)."""
    from biasbench.datasets import get
    from biasbench.generators.build import generate
    from biasbench.parallel import default_workers

    gen = get(req.dataset)
    if req.data_path is not None:
        folder = DatasetFolder(req.data_path, gen.name)
        have = [c.name for c in folder.configs()]
        missing = [config_name(r) for r in req.ratios if config_name(r) not in have]
        if missing:
            raise UserError(f"{req.data_path} has no config {', '.join(missing)} (have: {', '.join(have) or 'none'})")
        return folder
    folder = DatasetFolder(dataset_dir(req.data_root, gen.name), gen.name)
    have = {c.name for c in folder.configs()}
    missing = [r for r in req.ratios if config_name(r) not in have]
    if not missing:
        return folder
    names = ", ".join(config_name(r) for r in missing)
    reporter.info(f"{gen.name} {names} not in {req.data_root}: generating first")
    try:
        generate(gen.name, missing, req.data_root, 0, req.source_dir, workers=default_workers(), reporter=reporter)
    except UserError as exc:
        raise UserError(f"{gen.name} {names} is not generated in {req.data_root} and cannot be: {exc}") from None
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


def run_one(cfg: RunConfig, run_data, fingerprint: str, store: RunStore, device: torch.device,
            reporter: Reporter, restart: bool, data_path: Path) -> dict:
    from biasbench.methods import get as get_method
    from biasbench.training.trainer import train

    run_id = cfg.run_id(fingerprint)
    t0 = time.perf_counter()
    result = train(cfg, run_data, get_method(cfg.method), device, store.checkpoint_path(run_id), reporter, restart)
    record = {
        "format": RECORD_FORMAT,
        "run_id": run_id,
        "method": cfg.method,
        "dataset": cfg.dataset,
        "ratio": cfg.ratio,
        "seed": cfg.seed,
        "profile": cfg.profile,
        "variant": cfg.variant(),
        "config": cfg.to_dict(),
        **({"density_rule": cfg.density_rule} if cfg.density_rule is not None else {}),
        "data": {"path": str(data_path), "fingerprint": fingerprint},
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


def resolve_request(req: RunRequest, ratio: Decimal, seed: int, n_train: int) -> RunConfig:
    """The one place a request becomes a run config: `run` and `sweep` get the same run ids."""
    from biasbench.baselines import configure

    return configure(req.method, req.dataset, ratio, seed, req.profile, n_train, steps=req.steps, beta=req.beta,
                     density=req.density, eval_every=req.eval_every, amp=req.amp,
                     cudnn_benchmark=req.cudnn_benchmark, channels_last=req.channels_last)


def run_many(req: RunRequest, reporter: Reporter = SILENT) -> list[dict]:
    from biasbench.methods import get as get_method
    from biasbench.datasets import get as get_dataset

    get_method(req.method)  # an unknown method fails before any data is touched
    get_dataset(req.dataset)
    store = RunStore(req.results)
    store.ensure_writable()
    records = []
    folder = ensure_configs(req, reporter)
    for ratio in req.ratios:
        run_data, fingerprint = load_run_data(folder, ratio)
        for seed in req.seeds:
            cfg = resolve_request(req, ratio, seed, len(run_data.train))
            run_id = cfg.run_id(fingerprint)
            # One process per run id at a time: a second identical `run` waits, then finds the record and skips.
            with atomic.locked(store.checkpoint_path(run_id).with_suffix(".lock")):
                done = store.load(run_id)  # --restart only discards checkpoints, never finished runs
                if done is not None:
                    reporter.info(f"{run_id}: finished before, skipped")
                    records.append(done)
                    continue
                records.append(run_one(cfg, run_data, fingerprint, store, req.device, reporter, req.restart,
                                       folder.path))
            store.checkpoint_path(run_id).with_suffix(".lock").unlink(missing_ok=True)
    return records
