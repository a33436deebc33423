"""Choosing a sparse method's density, or a method's own number, on validation from a sweep's run records.

A benchmark may not tune on test: the default density of a sparse method
under a profile is the sweep density whose runs have the best mean
*valid* score (the profile's selection metric, at each run's best-valid
evaluation) over seeds. Ties go to the lower density (fewer weights, less
compute). Test numbers are shown beside the choice, never used for it.
A method's own number swept with `sweep --set METHOD.FIELD=V,...` (JTT's
T, `jtt.identify_fraction`) is chosen by the same rule; ties go to the
lower value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from biasbench.results import selection
from biasbench.results.leaderboard import is_density_variant


@dataclass(frozen=True)
class DensityScore:
    method: str
    density: float  # the swept value: the density, or the method's own number (`scores(param=...)`)
    n_seeds: int
    valid_mean: float  # %, the selection metric on valid at each run's best-valid evaluation
    test_mean: float  # %, the headline metric on test at the same evaluation (shown, not used)
    valid_by_seed: dict = field(default_factory=dict)  # seed -> valid %, for the paired choice


def scores(records: list[dict], dataset: str, ratio: str, profile: str, param: str = "density"
           ) -> list[DensityScore]:
    """Per method and swept value: mean valid and test over the sweep's seeds. `param` "density": every
    sparse method's density-only variants and default-density runs; "METHOD.FIELD": that method's runs that
    vary only that number (`--set METHOD.FIELD=V`) and its runs at the default. Runs that override anything
    else are left out."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in records:
        if (r.get("dataset"), r.get("ratio"), r.get("profile")) != (dataset, ratio, profile):
            continue
        value = _swept_value(r, param)
        if value is not None:
            groups.setdefault((r["method"], value), []).append(r)
    out = []
    for (method, value), runs in sorted(groups.items()):
        protocol = runs[0]["config"]["protocol"]
        metric, headline = protocol["selection_metric"], protocol["headline"]
        by_seed = {run["seed"]: run for run in runs}  # a seed twice (a sweep run and a default run): one
        chosen = {seed: selection.choose(run, "valid") for seed, run in by_seed.items()}
        valid = {seed: 100 * entry["valid"][metric] for seed, entry in chosen.items()}
        test = [100 * entry["test"][headline] for entry in chosen.values()]
        out.append(DensityScore(method, value, len(by_seed), sum(valid.values()) / len(valid),
                                sum(test) / len(test), valid))
    return out


def _swept_value(record: dict, param: str) -> float | None:
    """The record's value of the swept number, or None when the record is not one of the sweep's runs."""
    config, variant = record.get("config") or {}, str(record.get("variant", ""))
    if param == "density":
        density = config.get("density")
        ok = density is not None and (variant == "" or is_density_variant(variant))
        return float(density) if ok else None
    method, _, field_name = param.partition(".")
    value = (config.get("method_params") or {}).get(field_name)
    if record.get("method") != method or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return float(value) if variant == "" or ("," not in variant and variant.startswith(f"{param}=")) else None


def common_seeds(table: list[DensityScore], method: str) -> set:
    """The seeds every density of `method`'s sweep has."""
    rows = [s for s in table if s.method == method]
    return set.intersection(*(set(s.valid_by_seed) for s in rows)) if rows else set()


def choose(table: list[DensityScore], method: str, min_seeds: int = 1) -> DensityScore | None:
    """The density with the best mean valid score for `method` over the seeds all its densities share
    (ties: the lower density); None when fewer than `min_seeds` seeds are shared."""
    rows = [s for s in table if s.method == method]
    seeds = common_seeds(table, method)
    if not rows or len(seeds) < max(min_seeds, 1):
        return None

    def paired(s: DensityScore) -> float:
        return sum(s.valid_by_seed[k] for k in seeds) / len(seeds)

    best = max(rows, key=lambda s: (round(paired(s), 9), -s.density))
    return DensityScore(best.method, best.density, len(seeds), paired(best), best.test_mean, best.valid_by_seed)
