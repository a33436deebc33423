"""Choosing a sparse method's density on validation, from a density sweep's run records.

A benchmark may not tune on test: the default density of a sparse method
under a profile is the sweep density whose runs have the best mean
*valid* score (the profile's selection metric, at each run's best-valid
evaluation) over seeds. Ties go to the lower density (fewer weights, less
compute). Test numbers are shown beside the choice, never used for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from biasbench.results import selection
from biasbench.results.leaderboard import is_density_variant


@dataclass(frozen=True)
class DensityScore:
    method: str
    density: float
    n_seeds: int
    valid_mean: float  # %, the selection metric on valid at each run's best-valid evaluation
    test_mean: float  # %, the headline metric on test at the same evaluation (shown, not used)
    valid_by_seed: dict = field(default_factory=dict)  # seed -> valid %, for the paired choice


def scores(records: list[dict], dataset: str, ratio: str, profile: str) -> list[DensityScore]:
    """Per sparse method and density: mean valid and test over the sweep's seeds (density-only variants
    and the default-density runs; runs that override anything else are left out)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in records:
        if (r.get("dataset"), r.get("ratio"), r.get("profile")) != (dataset, ratio, profile):
            continue
        density = (r.get("config") or {}).get("density")
        variant = r.get("variant", "")
        if density is None or not (variant == "" or is_density_variant(variant)):
            continue
        groups.setdefault((r["method"], float(density)), []).append(r)
    out = []
    for (method, density), runs in sorted(groups.items()):
        protocol = runs[0]["config"]["protocol"]
        metric, headline = protocol["selection_metric"], protocol["headline"]
        by_seed = {run["seed"]: run for run in runs}  # a seed twice (a sweep run and a default run): one
        chosen = {seed: selection.choose(run, "valid") for seed, run in by_seed.items()}
        valid = {seed: 100 * entry["valid"][metric] for seed, entry in chosen.items()}
        test = [100 * entry["test"][headline] for entry in chosen.values()]
        out.append(DensityScore(method, density, len(by_seed), sum(valid.values()) / len(valid),
                                sum(test) / len(test), valid))
    return out


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
