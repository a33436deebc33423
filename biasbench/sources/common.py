"""Shared pieces of source handling: where sources live, hashing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


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
