"""Writing a generated dataset in the layouts existing research code reads, so it runs unchanged.

DisEnt/REST (`kakaoenterprise/Learning-Debiased-Disentangled:data/util.py`)
globs PNG files and parses label and bias from the last two `_` fields of
each path; where it globs differs per dataset, so the layout does too
(OUT is the code's `--data_dir`):

    cmnist     OUT/cmnist/{pct}/align/<c>/, conflict/<c>/, {pct}/valid/ (flat), OUT/cmnist/test/<c>/
    cifar10c   as cmnist, but {pct}/valid/<c>/
    bffhq      OUT/bffhq/{pct}/align/<c>/, conflict/<c>/, OUT/bffhq/valid/, OUT/bffhq/test/ (flat)

Files are named `<source_index>_<label>_<bias>.png` (no `_` or `.` in the
id, as the BFFHQ test filter splits the base name) and hold the stored PNG
bytes unchanged.

LfF (`alinlab/LfF:data/attr_dataset.py`) reads `OUT/<tag>/<split>/images.npy`
(N, H, W, 3) uint8 and `attrs.npy` (N, 2) [target, bias], plus
`OUT/<tag>/attr_names.pkl`; its code evaluates on `valid`, which in LfF is
the unbiased set built from the official test images. So LfF's `valid` gets
our test split, and our (held-out, unbiased) valid split goes to
`valid_heldout/`, which LfF's code ignores.

Each top-level piece is written into a temporary folder and renamed into
place, with a hidden `.biasbench-export.json` naming its content fingerprint
(hidden files are invisible to the loaders' `glob`): exporting again skips
identical pieces and refuses to overwrite different ones.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biasbench import atomic
from biasbench.digest import sha256_file
from biasbench.errors import UserError
from biasbench.safe_paths import plain_name
from biasbench.dataset_format.folder import Config, DatasetFolder
from biasbench.dataset_format.read import read_config
from biasbench.dataset_format.png import decode
from biasbench.ratios import ratio_from_config

FORMATS = ("disent", "lff")
MARKER = ".biasbench-export.json"


@dataclass
class ExportReport:
    root: Path
    written: dict[str, int] = field(default_factory=dict)  # piece -> number of images
    skipped: list[str] = field(default_factory=list)  # identical pieces already there


@dataclass
class _Split:
    png: list[bytes]
    label: np.ndarray
    bias: np.ndarray
    source_index: np.ndarray
    fingerprint: str


def _read(folder: DatasetFolder, config: Config, split: str) -> _Split:
    """Through the one verified reader: what is exported is the content the manifest vouches for."""
    schema = _generator(folder.dataset).schema
    a = read_config(folder, config, split, sizes=(len(schema.label_names), len(schema.bias_names)))
    return _Split(png=a.png, label=a.label, bias=a.bias, source_index=a.source_index, fingerprint=a.fingerprint)


def _piece(parent: Path, name: str, identity: dict, report: ExportReport, write) -> None:
    """Write one top-level piece atomically, unless an identical one exists; refuse a different one."""
    final = parent / plain_name(name, "an export folder")
    label = str(final.relative_to(report.root))
    if final.exists():
        try:
            found = json.loads((final / MARKER).read_text())
        except (OSError, ValueError):
            found = None
        if isinstance(found, dict) and {k: v for k, v in found.items() if k != "files"} == identity:
            changed = _changed_files(final, found.get("files"))
            if not changed:
                report.skipped.append(label)
                return
            raise UserError(f"{final} was exported from this data but {len(changed)} file(s) changed since "
                            f"(e.g. {changed[0]}); remove it or choose another --out")
        raise UserError(f"{final} already exists with other content; remove it or choose another --out")
    with atomic.building(parent, name) as tmp:  # a failure (a full disk) leaves no partial piece behind
        report.written[label] = write(tmp)
        files = {rel: digest for rel, digest in _file_digests(tmp)}  # the marker holds the content, not its name
        (tmp / MARKER).write_text(json.dumps({**identity, "files": files}, sort_keys=True) + "\n")
        # A rename, without atomic.publish_dir's fsync of every file: tens of thousands of small files
        # would take minutes to fsync, and a lost export is simply re-run (a killed one leaves only .tmp-*).
        os.replace(tmp, final)


def _file_digests(root: Path):
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = str(path.relative_to(root))
        if rel != MARKER:
            yield rel, (sha256_file(path) if path.is_file() and not path.is_symlink() else "not a regular file")


def _changed_files(root: Path, recorded) -> list[str]:
    """Files that differ from what the marker recorded at export (missing, added, edited); all if none was."""
    if not isinstance(recorded, dict):
        return ["(no content record: exported by an older biasbench)"]
    now = dict(_file_digests(root))
    return sorted({k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k)})


def _write_files(directory: Path, rows: _Split, mask: np.ndarray, by_class: bool) -> int:
    """PNG files named <source_index>_<label>_<bias>.png, in <label>/ subfolders when `by_class`."""
    seen: set[Path] = set()
    for i in np.flatnonzero(mask):
        sub = directory / str(rows.label[i]) if by_class else directory
        path = sub / f"{rows.source_index[i]}_{rows.label[i]}_{rows.bias[i]}.png"
        if path in seen:
            raise UserError(f"two rows would both be written as {path} (source_index repeats within a split)")
        seen.add(path)
        sub.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rows.png[i])
    return int(mask.sum())


def export_disent(folder: DatasetFolder, configs: list[Config], out: Path, report: ExportReport) -> None:
    layout = _generator(folder.dataset).export_layout
    base = out / folder.dataset
    base.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temps(base)
    dataset = folder.dataset
    first = configs[0]

    for config in configs:
        def write_ratio(tmp: Path, config: Config = config) -> int:
            train = _read(folder, config, "train")
            aligned = train.label == train.bias
            n = _write_files(tmp / "align", train, aligned, True) + _write_files(tmp / "conflict", train, ~aligned, True)
            if layout.valid_per_ratio:
                valid = _read(folder, config, "valid")
                n += _write_files(tmp / "valid", valid, np.ones(len(valid.label), bool), layout.valid_by_class)
            return n

        _piece(base, config.name, {"dataset": dataset, "config": config.name, "fingerprint": config.fingerprint},
               report, write_ratio)

    shared = ["test"] if layout.valid_per_ratio else ["valid", "test"]
    for split in shared:
        by_class = layout.test_by_class if split == "test" else layout.valid_by_class

        def write_split(tmp: Path, split: str = split, by_class: bool = by_class) -> int:
            rows = _read(folder, first, split)
            return _write_files(tmp, rows, np.ones(len(rows.label), bool), by_class)

        identity = {"dataset": dataset, "split": split, "fingerprint": first.splits[split]["fingerprint"]}
        _piece(base, split, identity, report, write_split)


def lff_tag(dataset: str, config: Config) -> str:
    """LfF's folder name for a config (its `dataset_tag`), as the dataset's registry entry writes it from the
    unit's parameters: metadata, so it goes through the checked name helper before it becomes a folder."""
    try:
        tag = _generator(dataset).lff_tag(config.unit["params"], ratio_from_config(config.name))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        raise UserError(f"{config.name}'s unit.json parameters do not give an LfF folder name; regenerate with "
                        "--force") from None
    return plain_name(tag, f"{config.name}'s LfF folder name")


def _generator(dataset: str):
    from biasbench.datasets import get

    return get(dataset)


def _npy_split(directory: Path, rows: _Split) -> int:
    directory.mkdir(parents=True)
    decoded = [decode(b) for b in rows.png]
    if len({im.shape for im in decoded}) > 1:
        raise UserError(f"{directory.name}: images of different sizes cannot form LfF's images.npy; use --format disent")
    images = np.stack(decoded) if decoded else np.zeros((0, 1, 1, 3), np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    np.save(directory / "images.npy", images.astype(np.uint8))
    np.save(directory / "attrs.npy", np.stack([rows.label, rows.bias], axis=1).astype(np.uint8))
    return len(rows.label)


def export_lff(folder: DatasetFolder, configs: list[Config], out: Path, report: ExportReport) -> None:
    out.mkdir(parents=True, exist_ok=True)
    names = list(_generator(folder.dataset).export_layout.lff_attr_names)
    for config in configs:
        def write(tmp: Path, config: Config = config) -> int:
            with open(tmp / "attr_names.pkl", "wb") as f:
                pickle.dump(names, f, protocol=2)
            n = _npy_split(tmp / "train", _read(folder, config, "train"))
            n += _npy_split(tmp / "valid", _read(folder, config, "test"))  # LfF evaluates its "valid" = test images
            return n + _npy_split(tmp / "valid_heldout", _read(folder, config, "valid"))

        identity = {"dataset": folder.dataset, "config": config.name, "fingerprint": config.fingerprint}
        _piece(out, lff_tag(folder.dataset, config), identity, report, write)


def export(folder: DatasetFolder, configs: list[Config], fmt: str, out: Path) -> ExportReport:
    """Write `configs` of `folder` under `out` in format `fmt` ('disent' or 'lff')."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    try:
        atomic.check_writable(out)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}; choose another --out") from None
    report = ExportReport(out)
    (export_disent if fmt == "disent" else export_lff)(folder, configs, out, report)
    return report

