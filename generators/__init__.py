"""Dataset generators, one module per dataset, registered by name.

Adding a dataset = one module exposing `GENERATOR` + one line in `_MODULES`.
Modules are imported on demand so that `biasbench --help` stays fast.
"""

from __future__ import annotations

import importlib

from biasbench.errors import UserError

_MODULES = {
    "cmnist": "cmnist",
    "cifar10c": "cifar10c",
    "bffhq": "bffhq",
}


def names() -> list[str]:
    return sorted(_MODULES)


def ordered() -> list[str]:
    """The registered datasets in registry order (the order tables and reports list them)."""
    return list(_MODULES)


def get(name: str):
    """The generator object registered as `name` (see generators.base.Generator)."""
    module = _MODULES.get(name.lower())
    if module is None:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{module}").GENERATOR
