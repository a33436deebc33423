"""The build loop every generator shares: lock, skip what exists, write units, rebuild the card.

Interruption safety comes from the folder's unit model (biasbench.dataset_format.folder):
units appear by rename, the card and manifest are rebuilt from what is on
disk at the end of every run, and leftovers of a killed run are removed by
the next one.
"""

from __future__ import annotations

import dataclasses
import platform
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow

from biasbench import __version__, atomic
from biasbench.errors import UserError
from biasbench.generators import get
from biasbench.dataset_format import card
from biasbench.dataset_format.folder import COMMON, DatasetFolder, params_hash
from biasbench.paths import dataset_dir
from biasbench.progress import SILENT, Reporter
from biasbench.protocol import CANONICAL_CONFLICTS, CONFLICT_RULES
from biasbench.ratios import config_name


@dataclass
class GenerateReport:
    path: Path
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed_leftovers: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    configs_on_disk: list[str] = field(default_factory=list)


def built_with() -> dict:
    """Library versions that the file bytes (not the content) depend on."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pyarrow.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "biasbench": __version__,
    }


def _prepare_dir(path: Path) -> None:
    try:
        atomic.check_writable(path)
    except OSError as exc:
        raise UserError(f"cannot write to {path}: {exc.strerror or exc}; choose another --out") from None


def _write_units(folder: DatasetFolder, units: list[tuple], schema, provenance: dict, workers: int) -> None:
    """Write (unit, params, splits, requires) units, up to `workers` at a time.

    Units are independent directories, each renamed into place when whole, so
    the order in which they appear does not matter: a ratio unit published
    before `common` is not a complete config until `common` exists with the
    parameters it requires (DatasetFolder.configs), and a killed run rebuilds
    the missing one. Threads suffice: parquet encoding, zstd, sha256 and fsync
    release the GIL. Bytes written do not depend on `workers`."""

    def write(unit: tuple) -> None:
        name, params, splits, requires = unit
        folder.write_unit(name, params, splits, schema, provenance, requires=requires)

    if workers <= 1 or len(units) <= 1:
        for unit in units:
            write(unit)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(units))) as pool:
        for _ in pool.map(write, units):  # re-raises the first failure
            pass


REBUILDING = "rebuild-in-progress"  # the card's first config while units are replaced: loading it fails


def _withdraw_rebuilt_configs(folder: DatasetFolder, rewriting: set[str], gen) -> None:
    """Before replacing units in place, take the configs that use them off the card.

    Units are replaced one at a time, so a run killed mid-rebuild leaves new
    units beside old ones. biasbench itself never reads such a mix (a config
    is complete only when its units' parameter hashes agree), but
    `datasets.load_dataset` reads the card: so the card first lists only the
    configs this build leaves alone, after a first config that names no file
    (loading it, the default, or a withdrawn config fails loudly). The final
    card is written when the build ends.
    """
    on_disk = folder.units()
    if not rewriting & set(on_disk):
        return  # nothing is replaced: new units never form a half-old config
    keep = [c for c in folder.configs() if not ({c.name, *c.required} & rewriting)]
    text = card.header(keep, gen.schema, gen.card_meta, placeholder=REBUILDING)
    text += f"\n# {folder.dataset}: being rebuilt\n\nA `biasbench generate --force` is replacing units of this folder " \
            "(or was killed while doing so: run it again). Configs being rebuilt are not listed.\n"
    atomic.write_text(folder.path / "README.md", text)


def with_conflicts(gen, rule: str | None):
    """The generator building `gen`'s dataset under conflict rule `rule` (None: its canonical rule)."""
    if rule is None:
        return gen
    if rule not in CONFLICT_RULES:
        raise UserError(f"unknown --conflicts {rule!r}: use one of {', '.join(CONFLICT_RULES)}")
    if not hasattr(getattr(gen, "proto", None), "conflicts"):
        if rule == CANONICAL_CONFLICTS:
            return gen
        raise UserError(f"{gen.name} has a single construction: --conflicts applies to cmnist and cifar10c")
    return type(gen)(dataclasses.replace(gen.proto, conflicts=rule))


def generate(
    dataset: str,
    ratios: list[Decimal],
    root: Path,
    seed: int,
    source_dir: Path | None = None,
    force: bool = False,
    allow_unverified: bool = False,
    workers: int = 1,
    reporter: Reporter = SILENT,
    conflicts: str | None = None,
) -> GenerateReport:
    """Build the requested ratios of `dataset` under `root` (a no-op for what exists).

    `conflicts` names the rule that picks bias-conflicting images (biasbench.protocol.CONFLICT_RULES);
    a non-canonical rule is another dataset, in its own folder (biasbench.paths)."""
    gen = with_conflicts(get(dataset), conflicts)
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    path = dataset_dir(root, gen.name, seed, getattr(getattr(gen, "proto", None), "conflicts", CANONICAL_CONFLICTS))
    existed = path.exists()
    _prepare_dir(path)
    folder = DatasetFolder(path, gen.name)
    try:
        return _generate(gen, folder, ratios, seed, source_dir, force, allow_unverified, workers, reporter)
    except BaseException:
        if not existed:  # a failed first build leaves no empty dataset folder (with only its lock) behind
            _remove_if_only_lock(path)
        raise


def _remove_if_only_lock(path: Path) -> None:
    try:
        if path.is_dir() and {p.name for p in path.iterdir()} <= {".lock"}:
            (path / ".lock").unlink(missing_ok=True)
            path.rmdir()
    except OSError:
        pass


def _generate(gen, folder: DatasetFolder, ratios, seed, source_dir, force, allow_unverified, workers,
              reporter) -> GenerateReport:
    path = folder.path
    report = GenerateReport(path)
    t0 = time.perf_counter()
    with folder.lock():
        report.removed_leftovers = len(folder.clean())
        source = gen.load_sources(source_dir, allow_unverified)
        report.timings["sources"] = time.perf_counter() - t0

        common_params = gen.params(source, seed, None)
        wanted = {COMMON: common_params, **{config_name(r): gen.params(source, seed, r) for r in ratios}}
        status = {unit: folder.unit_status(unit, p) for unit, p in wanted.items()}
        clash = [u for u, s in status.items() if s == "different"]
        if clash and not force:
            raise UserError(
                f"{path} already holds {', '.join(clash)} built from other parameters or source files; "
                "pass --force to rebuild"
            )
        need_common = force or status[COMMON] != "same"
        todo = [r for r in ratios if force or status[config_name(r)] != "same"]
        report.skipped = [config_name(r) for r in ratios if r not in todo]

        if need_common or todo:
            built = gen.build(source, seed, todo, need_common, workers, reporter)
            report.timings.update(built.timings)
            t1 = time.perf_counter()
            provenance = {**gen.provenance(source), "built_with": built_with()}
            units = [(COMMON, common_params, built.common, None)] if built.common is not None else []
            for ratio in todo:
                name = config_name(ratio)
                units.append((name, wanted[name], built.ratios[ratio], {COMMON: params_hash(common_params)}))
            _withdraw_rebuilt_configs(folder, {u[0] for u in units}, gen)
            _write_units(folder, units, gen.schema, provenance, workers)
            report.built += [config_name(r) for r in todo]
            report.timings["write"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        configs = folder.configs()
        text = card.render(gen, configs)
        folder.write_card_and_manifest(text, __version__)
        report.timings["card"] = time.perf_counter() - t2
        report.configs_on_disk = [c.name for c in configs]
    report.timings["total"] = time.perf_counter() - t0
    return report
