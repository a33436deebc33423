"""Debiasing methods, one module per method, registered by name.

Adding a method = one module defining a `Method` subclass named `METHOD` +
one line in `_MODULES`. The name is the public API (`--method NAME`).
"""

from __future__ import annotations

import importlib

from biasbench.errors import UserError

_MODULES = {
    "erm": "erm",
    "reweighted_erm": "reweighted_erm",
    "lff": "lff",
    "disent": "disent",
    "rigl": "rigl",
    "rest": "rest",
    "mrm": "mrm",
    "groupdro": "groupdro",
    "jtt": "jtt",
}


def names() -> list[str]:
    return sorted(_MODULES)


def ordered() -> list[str]:
    """The registered methods in registry order (the order figures draw them)."""
    return list(_MODULES)


def canonical(name: str) -> str:
    """The registered spelling of a method name (`REST`, `Reweighted-ERM` -> `rest`, `reweighted_erm`):
    the one that reaches configs, run ids and leaderboards."""
    key = name.strip().lower().replace("-", "_")
    if key not in _MODULES:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(names())}")
    return key


def get(name: str):
    return importlib.import_module(f"{__name__}.{_MODULES[canonical(name)]}").METHOD
