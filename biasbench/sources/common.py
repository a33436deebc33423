"""Shared pieces of source handling: where sources live, hashing."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    """One source file as read: its checksums and whether they match the official release."""

    name: str
    path: str  # as found; shown to the user, never written into a dataset
    md5: str
    sha256: str
    verified: bool


def sources_cache() -> Path:
    """Where downloads go when the user gives no source directory."""
    env = os.environ.get("BIASBENCH_SOURCES_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "biasbench" / "sources"


def env_source_dir() -> Path | None:
    env = os.environ.get("BIASBENCH_SOURCES")
    return Path(env) if env else None


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_with_torchvision(fetch, where: Path, what: str, hint: str) -> None:
    """Run a torchvision download; any failure becomes one line that says how to work offline."""
    try:
        fetch()
    except Exception as exc:  # network errors come in many types
        from biasbench.errors import UserError

        raise UserError(
            f"could not download {what} into {where} ({type(exc).__name__}); "
            f"if this machine is offline, pass --source-dir DIR with {hint}"
        ) from None
