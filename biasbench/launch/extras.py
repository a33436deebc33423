"""Optional dependencies: a launcher whose extra is missing says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from biasbench.errors import UserError

EXTRAS = {"ray": ("ray", "Ray"), "slurm": ("submitit", "submitit")}


def require(launcher: str) -> ModuleType:
    """Import the launcher's engine, or fail with the one pip command that fixes it."""
    module, name = EXTRAS[launcher]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"--launcher {launcher} needs {name}, which is not installed here: pip install 'biasbench-spurious[{launcher}]'"
        ) from None
