"""Checkpoints: written atomically, read with `weights_only=True` (no code runs on load).

A checkpoint carries its identity (the run id it was written for and a digest of the resolved config), so
one copied or left under another run's name is never resumed: `claim` sets it aside (renamed beside it,
nothing deleted) and the run starts over.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import torch

from biasbench import atomic
from biasbench.errors import UserError


def save(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, buffer.getvalue())


KEYS = ("modules", "optimizer", "scheduler", "stream", "preprocess", "method", "torch_rng", "state")


def load(path: Path) -> dict:
    """A checkpoint the trainer wrote: every part it resumes from is there, or a one-line error."""
    try:
        with warnings.catch_warnings():  # torch's warning about a foreign pickle's protocol: the error says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, wrong types: all mean "damaged"
        raise UserError(
            f"checkpoint {path} is damaged or not a biasbench checkpoint ({type(exc).__name__}); "
            "pass --restart to start this run over"
        ) from None
    if not isinstance(state, dict) or any(k not in state for k in KEYS) or not isinstance(state.get("state"), dict):
        raise UserError(f"checkpoint {path} loads but is not a biasbench checkpoint (another program's?); "
                        "pass --restart to start this run over")
    return state


def identity(run_id: str, config: dict) -> dict:
    """What a checkpoint must say it belongs to: the run id and a digest of the resolved config."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return {"run_id": run_id, "config_digest": digest}


def claim(path: Path, state: dict, want: dict) -> str | None:
    """None when `state` is this run's checkpoint; otherwise set the file aside (`<name>.foreign-N`) and return
    the one-line reason, so the caller starts the run over and nothing is lost."""
    found = state.get("identity")
    if found == want:
        return None
    aside = path.with_name(f"{path.name}.foreign-1")
    k = 1
    while aside.exists():
        k += 1
        aside = path.with_name(f"{path.name}.foreign-{k}")
    os.replace(path, aside)
    whose = found.get("run_id") if isinstance(found, dict) else None
    why = (f"was written for run {whose}" if isinstance(whose, str) and whose != want["run_id"]
           else "was written for another config" if isinstance(found, dict) else "carries no run identity")
    return (f"checkpoint {path.name} {why}; set aside as {aside.name} and starting this run over")
