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


def configure(method: str, dataset: str, ratio, seed: int, profile: str, n_train: int, **options):
    """A method's run config: the method's registry entry supplies what it needs (beta, density, its own
    numbers) to `runconfig.resolve`; `options` are resolve's overrides (steps, beta, density, ...)."""
    from biasbench.runconfig import get_protocol, resolve

    name = canonical(method)
    cls = get(name)
    params = cls.own_params(profile, dataset, get_protocol(profile, dataset))
    return resolve(name, dataset, ratio, seed, profile, n_train, cls.uses_beta, cls.uses_density,
                   default_density=cls.default_density, params=params, **options)
