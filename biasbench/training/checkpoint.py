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


def load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, wrong types: all mean "damaged"
        raise UserError(
            f"checkpoint {path} is damaged or not a biasbench checkpoint ({type(exc).__name__}); "
            "pass --restart to start this run over"
        ) from None
