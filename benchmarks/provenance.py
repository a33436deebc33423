"""What every benchmark JSON records about where its numbers came from: one schema for all of them."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def provenance(threads: int | None = None) -> dict:
    """Commit (+dirty), torch version, torch threads, cores and the 1-minute load when the numbers were taken."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if commit and dirty:
            commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        commit = None
    try:
        import torch

        torch_version, torch_threads = torch.__version__, torch.get_num_threads()
    except ImportError:
        torch_version, torch_threads = None, None
    return {"commit": commit, "torch": torch_version, "threads": threads if threads is not None else torch_threads,
            "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "machine": platform.machine(),
            "python": platform.python_version()}
