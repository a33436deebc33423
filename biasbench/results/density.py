"""Choosing a sparse method's density on validation, from a density sweep's run records.

A benchmark may not tune on test: the default density of a sparse method
under a profile is the sweep density whose runs have the best mean
*valid* score (the profile's selection metric, at each run's best-valid
evaluation) over seeds. Ties go to the lower density (fewer weights, less
compute). Test numbers are shown beside the choice, never used for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from biasbench.results.leaderboard import is_density_variant


@dataclass(frozen=True)
class DensityScore:
    method: str
    density: float
    n_seeds: int
    valid_mean: float  # %, the selection metric on valid at each run's best-valid evaluation
    test_mean: float  # %, the headline metric on test at the same evaluation (shown, not used)


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
        valid = [100 * run["best_valid"]["valid"][metric] for run in runs]
        test = [100 * run["best_valid"]["test"][headline] for run in runs]
        out.append(DensityScore(method, density, len({run["seed"] for run in runs}),
                                sum(valid) / len(valid), sum(test) / len(test)))
    return out


def choose(table: list[DensityScore], method: str, min_seeds: int = 1) -> DensityScore | None:
    """The density with the best mean valid score for `method` (ties: the lower density)."""
    rows = [s for s in table if s.method == method and s.n_seeds >= min_seeds and not math.isnan(s.valid_mean)]
    if not rows:
        return None
    return max(rows, key=lambda s: (round(s.valid_mean, 9), -s.density))
