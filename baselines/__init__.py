"""Debiasing methods, one module per method (a `Method` subclass named `METHOD`).

They are registered by name in biasbench/methods.py (one line each, with how tables show them); the
names below are that registry's. The name is the public API (`--method NAME`).
"""

from __future__ import annotations

from biasbench.datasets import DATASETS
from biasbench.methods import canonical, get, names, ordered  # noqa: F401
from biasbench.runconfig import get_protocol, resolve


def configure(method: str, dataset: str, ratio, seed: int, profile: str, n_train: int, **options):
    """A method's run config: the method's registry entry supplies what it needs (beta, density, its own
    numbers for the dataset's family) to `runconfig.resolve`; `options` are resolve's overrides."""
    name = canonical(method)
    cls = get(name)
    params = cls.own_params(profile, DATASETS.info(dataset), get_protocol(profile, dataset))
    return resolve(name, dataset, ratio, seed, profile, n_train, cls.uses_beta, cls.uses_density,
                   default_density=cls.default_density, params=params, **options)
