"""Checkpoints: written atomically, read with `weights_only=True` (no code runs on load)."""

from __future__ import annotations

import io
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
