"""`biasbench verify --regenerate`: rebuild a folder's configs from sources and compare fingerprints.

It lives with the generators (it builds), above the dataset format it checks, so that the format
(biasbench/dataset_format) never imports a generator.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from biasbench.generators.build import generate
from biasbench.dataset_format.folder import MANIFEST
from biasbench.dataset_format.verify import Check, load_manifest
from biasbench.ratios import ratio_from_config


def verify_by_regenerating(path: Path, source_dir: Path | None, workers: int) -> list[Check]:
    """Rebuild the manifest's configs from sources (same seed) and compare content fingerprints."""
    manifest = load_manifest(path)
    names = list(manifest["configs"])
    if not names:
        return []
    unit = json.loads((Path(path) / "data" / names[0] / "unit.json").read_text())
    seed = int(unit["params"]["seed"])
    with tempfile.TemporaryDirectory(prefix="bb-regenerate-") as tmp:
        report = generate(manifest["dataset"], [ratio_from_config(n) for n in names], Path(tmp), seed, source_dir,
                          allow_unverified=not unit["provenance"].get("verified", True), workers=workers,
                          conflicts=unit["params"].get("conflicts"))
        rebuilt = json.loads((report.path / MANIFEST).read_text())["configs"]
    checks = []
    for name in names:
        check = Check(f"{name} (regenerated)")
        if rebuilt.get(name, {}).get("fingerprint") != manifest["configs"][name]["fingerprint"]:
            check.problems.append("rebuilt from sources, the content fingerprint differs")
        checks.append(check)
    return checks
