"""Optional mirrors of a run's history in TensorBoard or W&B (offline), for users of those dashboards.

The JSON run record stays the source of truth: a sink is fed from the
record after the run finished, so it can change neither the run id nor the
record, and a sweep's runs on Ray or SLURM are mirrored like local ones.
Neither package is a dependency of biasbench: each is imported only when
asked for, and a missing one is a one-line error before anything trains.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from biasbench import atomic
from biasbench.errors import UserError

SINKS = {
    # name: (module imported, what to install)
    "tensorboard": ("torch.utils.tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
}


def load(kind: str):
    """The sink's module, or a UserError saying what to install."""
    if kind not in SINKS:
        raise UserError(f"unknown --log {kind!r}; choose one of: {', '.join(SINKS)}")
    module, package = SINKS[kind]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"--log {kind} needs the {package} package, which biasbench does not install: "
                        f"pip install {package}") from None


def scalars(entry: dict) -> dict[str, float]:
    """One evaluation as flat scalars: valid/<metric>, test/<metric>, train_loss, lr (no group tables)."""
    out = {}
    for split in ("valid", "test"):
        for k, v in (entry.get(split) or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{split}/{k}"] = float(v)
    for k in ("train_loss", "lr"):
        if isinstance(entry.get(k), (int, float)):
            out[k] = float(entry[k])
    return out


def mirror(record: dict, kind: str, log_dir: Path) -> bool:
    """Write the record's history to the sink under LOG_DIR; False when it was mirrored there before."""
    module = load(kind)
    log_dir = Path(log_dir)
    marker = log_dir / f".mirrored-{kind}-{record['run_id']}"
    if marker.exists():  # a re-run that skipped a finished run must not log its history twice
        return False
    log_dir.mkdir(parents=True, exist_ok=True)
    history = record.get("history") or []
    if kind == "tensorboard":
        writer = module.SummaryWriter(log_dir=str(log_dir / record["run_id"]))
        for entry in history:
            for tag, value in scalars(entry).items():
                writer.add_scalar(tag, value, entry["step"])
        writer.close()
    else:
        run = module.init(mode="offline", dir=str(log_dir), project="biasbench", name=record["run_id"],
                          config={"run_id": record["run_id"], "method": record["method"],
                                  "dataset": record["dataset"], "ratio": record["ratio"], "seed": record["seed"],
                                  "profile": record["profile"], **(record.get("config") or {})})
        for entry in history:
            run.log(scalars(entry), step=entry["step"])
        run.finish()
    atomic.write_text(marker, record["run_id"] + "\n")
    return True
