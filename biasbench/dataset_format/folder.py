"""A generated dataset on disk: units of parquet shards, a card, a manifest.

Layout of `ROOT/<dataset>/`:

    README.md            card: YAML configs + features, then the text
    manifest.json        sha256 of every file, fingerprints per config
    data/common/         splits shared by all ratios (valid, test) + unit.json
    data/<ratio>pct/     the ratio's train split + unit.json

A *unit* is a directory written whole into a temporary folder and renamed
into place, so it exists completely or not at all. `unit.json` holds the
parameters that define the unit (their hash is its identity), split sizes,
per-class counts, fingerprints and file hashes. A config (one ratio) is
complete when its unit and the units it requires exist with the parameter
hashes it was built against. The card and manifest are derived from the
units on disk, never edited in place, so building 1pct and then 5pct yields
one card listing both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from biasbench.digest import sha256_file  # noqa: F401  (re-exported: verify.py uses it)
from biasbench import atomic
from biasbench.errors import UserError
from biasbench.dataset_format import parquet, preview
from biasbench.dataset_format.png import decode
from biasbench.dataset_format.fingerprint import config_fingerprint, split_fingerprint
from biasbench.dataset_format.schema import Schema
from biasbench.ratios import ratio_from_config
from biasbench import safe_paths
from biasbench.safe_paths import is_plain_name

UNIT_FILE = "unit.json"
MANIFEST = "manifest.json"
CARD = "README.md"
PREVIEW = "preview.png"  # in each ratio unit: aligned and conflicting examples per class
COMMON = "common"
FORMAT = "biasbench-dataset/1"


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def class_counts(rows: parquet.SplitRows, n_classes: int) -> dict[str, list[int]]:
    aligned = np.bincount(rows.label[rows.aligned], minlength=n_classes)
    conflicting = np.bincount(rows.label[~rows.aligned], minlength=n_classes)
    return {"aligned": aligned.tolist(), "conflicting": conflicting.tolist()}


@dataclass(frozen=True)
class Config:
    """One complete config (ratio) as found on disk."""

    name: str
    unit: dict
    required: dict[str, dict]

    @property
    def splits(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for unit in (*self.required.values(), self.unit):
            for split, info in unit["splits"].items():
                out[split] = {**info, "unit": unit["unit"]}
        return dict(sorted(out.items(), key=lambda kv: ("train", "valid", "test").index(kv[0])))

    @property
    def fingerprint(self) -> str:
        return config_fingerprint({s: i["fingerprint"] for s, i in self.splits.items()})

    def files(self, split: str) -> list[str]:
        info = self.splits[split]
        return [f"data/{info['unit']}/{name}" for name in info["files"]]


def _check_unit(meta: object, unit: str, path: Path) -> None:
    """unit.json's shape and every file name in it (safe_paths); one-line errors naming the file."""
    what = str(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict) or not isinstance(meta.get("splits"), dict):
        raise UserError(f"{what} is not a biasbench unit (no files/splits tables); delete it or regenerate with --force")
    if meta.get("unit", unit) != unit:
        raise UserError(f"{what} says it is unit {meta.get('unit')!r} but lies in data/{unit}; refusing it")
    _check_ratio(meta, unit, what)
    names = list(meta["files"])
    for split, info in meta["splits"].items():
        if not isinstance(info, dict) or not isinstance(info.get("files"), list):
            raise UserError(f"{what}: split {split!r} has no file list; delete it or regenerate with --force")
        names += info["files"]
    for split, info in meta["splits"].items():  # a fingerprint names the tensor cache file: 64 hex digits only
        safe_paths.fingerprint(info.get("fingerprint"), f"{what}: split {split!r}")
    for name in names:
        if not is_plain_name(name):
            raise UserError(f"{what} names the file {name!r}, which is not a plain file name inside its unit; "
                            "refusing it")
        file = path.parent / name
        if file.is_symlink():
            raise UserError(f"{what}: {file} is a symbolic link; a dataset folder holds none, refusing it")


def _check_ratio(meta: dict, unit: str, what: str) -> None:
    """A ratio unit's parameters name the ratio its folder does: a 5pct unit copied in as data/1pct (its
    `unit` field edited) is refused, not trained on and recorded as 1 %."""
    if unit == COMMON:
        return
    params = meta.get("params")
    ratio = params.get("ratio") if isinstance(params, dict) else None
    try:
        same = ratio is not None and Decimal(str(ratio)) == ratio_from_config(unit)
    except (ArithmeticError, ValueError, UserError):
        same = False
    if not same:
        raise UserError(f"{what} was built for ratio {ratio!r}, which is not data/{unit}; refusing it")


class DatasetFolder:
    def __init__(self, path: Path, dataset: str):
        self.path = Path(path)
        self.dataset = dataset

    # -- reading -----------------------------------------------------------
    def unit_dir(self, unit: str) -> Path:
        return self.path / "data" / unit

    def read_unit(self, unit: str) -> dict | None:
        """A unit's metadata, checked: every file it names is a plain name inside the unit (no `..`, no
        absolute path, no symbolic link), so nothing that reads a folder can be sent outside it."""
        path = self.unit_dir(unit) / UNIT_FILE
        if not path.is_file():
            return None
        if path.is_symlink() or self.unit_dir(unit).is_symlink():
            raise UserError(f"{path} is reached through a symbolic link; a dataset folder holds none, refusing it")
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} is unreadable ({exc}); delete it or regenerate with --force") from None
        _check_unit(meta, unit, path)
        return meta

    def units(self) -> dict[str, dict]:
        data = self.path / "data"
        if data.is_symlink():
            raise UserError(f"{data} is a symbolic link; a dataset folder holds none, refusing it")
        if not data.is_dir():
            return {}
        found = {}
        for d in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
            unit = self.read_unit(d.name)
            if unit is not None:
                found[d.name] = unit
        return found

    def unit_status(self, unit: str, params: dict) -> str:
        """'absent', 'same' (identical parameters) or 'different'."""
        meta = self.read_unit(unit)
        if meta is None:
            return "absent"
        return "same" if meta.get("params_hash") == params_hash(params) else "different"

    def configs(self) -> list[Config]:
        """Complete configs, ordered by ratio."""
        units = self.units()
        out = []
        for name, unit in units.items():
            if name == COMMON:
                continue
            required = {}
            for dep, want in unit.get("requires", {}).items():
                have = units.get(dep)
                if have is None or have.get("params_hash") != want:
                    break
                required[dep] = have
            else:
                out.append(Config(name, unit, required))
        return sorted(out, key=lambda c: ratio_from_config(c.name))

    # -- writing (hold `lock()` around these) -------------------------------
    def lock(self):
        self.path.mkdir(parents=True, exist_ok=True)
        return atomic.locked(self.path / ".lock")

    def clean(self) -> list[Path]:
        return atomic.remove_stale_temps(self.path)

    def write_unit(
        self,
        unit: str,
        params: dict,
        splits: dict[str, parquet.SplitRows],
        schema: Schema,
        provenance: dict,
        requires: dict[str, str] | None = None,
    ) -> dict:
        """Write a unit's shards and unit.json into a temp dir, then rename it into place."""
        final = self.unit_dir(unit)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic.building(final.parent, unit) as tmp:  # a failure leaves no partial unit behind
                return self._write_unit_into(tmp, final, unit, params, splits, schema, provenance, requires)
        except BaseException:
            try:
                final.parent.rmdir()  # only if empty: the first unit of a new folder leaves no bare data/
            except OSError:
                pass
            raise

    def _write_unit_into(self, tmp: Path, final: Path, unit: str, params: dict, splits: dict, schema: Schema,
                         provenance: dict, requires: dict[str, str] | None) -> dict:
        meta: dict = {
            "format": FORMAT,
            "dataset": self.dataset,
            "unit": unit,
            "params": params,
            "params_hash": params_hash(params),
            "requires": dict(requires or {}),
            "provenance": provenance,
            "splits": {},
            "files": {},
        }
        for split, rows in splits.items():
            names = parquet.write_split(tmp, split, rows, schema)
            for name in names:
                meta["files"][name] = sha256_file(tmp / name)
            meta["splits"][split] = {
                "files": names,
                "num_examples": len(rows),
                "num_bytes": int(sum((tmp / n).stat().st_size for n in names)),
                "fingerprint": split_fingerprint(
                    rows.pixel_digests, rows.shapes, rows.label, rows.bias, rows.aligned, rows.source_index
                ),
                "counts": class_counts(rows, len(schema.label_names)),
            }
        if "train" in splits:
            rows = splits["train"]
            png = preview.render(lambda i: decode(rows.png[i]), rows.label, rows.aligned, len(schema.label_names))
            (tmp / PREVIEW).write_bytes(png)
            meta["files"][PREVIEW] = hashlib.sha256(png).hexdigest()
        (tmp / UNIT_FILE).write_text(dumps(meta))
        atomic.publish_dir(tmp, final)
        return meta

    def write_card_and_manifest(self, card_text: str, version: str) -> bool:
        """Rewrite README.md and manifest.json from the units on disk; True if either changed."""
        changed = atomic.write_if_changed(self.path / CARD, card_text)
        changed |= atomic.write_if_changed(self.path / MANIFEST, dumps(self.build_manifest(version)))
        return changed

    def build_manifest(self, version: str, configs: list[Config] | None = None, card: Path | None = None) -> dict:
        """The manifest of this folder, or of a subset of its configs (for publishing).

        With `configs` given, only the units those configs use are listed;
        otherwise every unit on disk. `card` is the README to hash (default:
        the folder's own).
        """
        units = self.units()
        if configs is not None:
            wanted = {u for c in configs for u in (c.name, *c.required)}
            units = {n: u for n, u in units.items() if n in wanted}
        files: dict[str, str] = {}
        for name, unit in units.items():
            for fname, digest in unit["files"].items():
                files[f"data/{name}/{fname}"] = digest
            files[f"data/{name}/{UNIT_FILE}"] = sha256_file(self.unit_dir(name) / UNIT_FILE)
        card = card or self.path / CARD
        if card.is_file():
            files[CARD] = sha256_file(card)
        configs = self.configs() if configs is None else configs
        return {
            "format": FORMAT,
            "dataset": self.dataset,
            "biasbench_version": version,
            "fingerprint_spec": "biasbench.dataset_format.fingerprint (sha256 over rows: sha256(pixels HWC uint8), "
                                "shape, label, bias_label, aligned, source_index)",
            "configs": {
                c.name: {
                    "fingerprint": c.fingerprint,
                    # the construction rule of a generator that has several (biasbench.protocol.CONFLICT_RULES)
                    **({"conflicts": c.unit["params"]["conflicts"]} if "conflicts" in c.unit["params"] else {}),
                    "splits": {
                        s: {"fingerprint": i["fingerprint"], "num_examples": i["num_examples"], "files": c.files(s)}
                        for s, i in c.splits.items()
                    },
                }
                for c in configs
            },
            "files": dict(sorted(files.items())),
        }
