"""Debiasing methods, one module per method (a `Method` subclass named `METHOD`).

They are registered by name in biasbench/methods.py (one line each, with how tables show them); the
names below are that registry's. The name is the public API (`--method NAME`).
"""

from __future__ import annotations

from biasbench.datasets import DATASETS
from biasbench.methods import canonical, get, names, ordered  # noqa: F401
from biasbench.overrides import apply_sets
from biasbench.ratios import config_name
from biasbench.runconfig import get_protocol, resolve


def configure(method: str, dataset: str, ratio, seed: int, profile: str, n_train: int, *,
              density: float | str | None = None, sets: dict | None = None, **given):
    """A method's run config: its registry entry supplies what it needs (beta, density, its own numbers for
    the dataset's family) to `runconfig.resolve`. `given`: overrides by name (biasbench/overrides.py, e.g.
    steps=200); `sets`: {field: value text} of the method's own numbers (`--set`)."""
    from biasbench.overrides import OVERRIDES

    unknown = set(given) - {o.name for o in OVERRIDES}
    if unknown:
        raise TypeError(f"configure() got unknown overrides {sorted(unknown)}")
    name = canonical(method)
    cls = get(name)
    params = cls.own_params(profile, DATASETS.info(dataset), get_protocol(profile, dataset))
    params, recorded = apply_sets(name, params, config_name(ratio), sets or {})
    return resolve(name, dataset, ratio, seed, profile, n_train, cls, given, density, params, recorded)
