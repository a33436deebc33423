"""What a dataset generator provides to the shared build loop (generators.build)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from biasbench.dataset_format.card import CardMeta
from biasbench.dataset_format.folder import Config
from biasbench.dataset_format.parquet import SplitRows
from biasbench.dataset_format.schema import Schema
from biasbench.progress import Reporter


@dataclass
class Built:
    """Rendered splits: the shared unit (valid/test) and one train split per ratio."""

    common: dict[str, SplitRows] | None
    ratios: dict[Decimal, dict[str, SplitRows]]
    timings: dict[str, float] = field(default_factory=dict)


def unit_params(dataset: str, version: int, seed: int, ratio: Decimal | None, files, **rules) -> dict:
    """A unit's identity: dataset, generator version, seed, construction rules, source content, ratio."""
    params = {
        "dataset": dataset,
        "generator_version": version,
        "seed": seed,
        **rules,
        "sources_sha256": {f.name: f.sha256 for f in files},
    }
    if ratio is not None:
        params["ratio"] = str(ratio)
    return params


def source_provenance(files, **extra) -> dict:
    """Source checksums and whether they are the official release, as recorded in every unit."""
    return {
        "sources": [{"file": f.name, "md5": f.md5, "sha256": f.sha256, "verified": f.verified} for f in files],
        "verified": all(f.verified for f in files),
        **extra,
    }


@dataclass(frozen=True)
class ExportLayout:
    """How `biasbench export` writes this dataset in the references' file layouts (biasbench/export.py).

    DisEnt's release: `{pct}/align|conflict/<c>/<file>`, then a valid split per
    ratio (`{pct}/valid`) or one shared `valid/`, each by class or flat, and a
    shared `test/`. LfF's: `<tag>/{train,valid}/images.npy` + `attrs.npy`,
    with `attr_names` (target, bias) and the folder tag from `lff_tag`.
    """

    valid_per_ratio: bool
    valid_by_class: bool
    test_by_class: bool
    lff_attr_names: tuple[str, str]


class Generator(Protocol):
    name: str
    schema: Schema
    card_meta: CardMeta
    export_layout: ExportLayout
    fits_cpu: bool  # a `cpu`-profile grid of it fits the 2-core machine (the report's "needs" text)

    def lff_tag(self, params: dict, ratio: Decimal) -> str:
        """LfF's `dataset_tag` folder name for a config of this dataset (its unit params and ratio)."""

    def load_sources(self, source_dir: Path | None, allow_unverified: bool) -> Any:
        """Read and verify the source release (download it when no dir is given)."""

    def params(self, source: Any, seed: int, ratio: Decimal | None) -> dict:
        """Everything that defines a unit's content (ratio None = shared unit)."""

    def provenance(self, source: Any) -> dict:
        """Facts recorded with a unit that do not define it (versions, checksums)."""

    def build(
        self, source: Any, seed: int, ratios: list[Decimal], need_common: bool, workers: int, reporter: Reporter
    ) -> Built:
        """Render the requested splits, computing each distinct image once."""

    def card_body(self, configs: list[Config]) -> str:
        """Card prose and tables for the complete configs on disk."""
