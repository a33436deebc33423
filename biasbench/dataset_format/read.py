"""Reading a generated split back into numpy arrays (decoded images, labels)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from biasbench.errors import UserError
from biasbench.dataset_format.fingerprint import pixel_digest, split_fingerprint
from biasbench.dataset_format.folder import MANIFEST, UNIT_FILE, Config, DatasetFolder, sha256_file
from biasbench.dataset_format.parquet import read_split
from biasbench.dataset_format.png import decode
from biasbench.ratios import config_name


@dataclass
class SplitArrays:
    images: np.ndarray  # (N, H, W, C) uint8
    label: np.ndarray  # int64
    bias: np.ndarray  # int64
    aligned: np.ndarray  # bool
    source_index: np.ndarray  # int64
    fingerprint: str
    png: list | None = None  # the stored PNG bytes (export serves them unchanged)

    def computed_fingerprint(self) -> str:
        n = len(self.label)
        digests = np.array([pixel_digest(im) for im in self.images], dtype="S32")
        shapes = np.tile(np.array(self.images.shape[1:], dtype=np.uint16), (n, 1))
        return split_fingerprint(digests, shapes, self.label, self.bias, self.aligned, self.source_index)


def _manifest(folder: DatasetFolder) -> dict:
    path = folder.path / MANIFEST
    try:
        manifest = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, ValueError, RecursionError):
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) \
            or not isinstance(manifest.get("configs"), dict):
        raise UserError(f"{path} is missing or unreadable: nothing vouches for {folder.path}'s content; "
                        "regenerate with --force")
    return manifest


def vouch(folder: DatasetFolder, config: Config, split: str) -> None:
    """The split is the one the manifest vouches for: its unit.json's sha256, its shards' sha256 and its
    fingerprint agree with manifest.json (cheap: no shard is read). Every reader calls this first."""
    manifest = _manifest(folder)
    info = config.splits[split]
    unit = info["unit"]
    meta = config.unit if unit == config.name else config.required[unit]
    where = f"{folder.path / 'data' / unit}"
    if manifest["files"].get(f"data/{unit}/{UNIT_FILE}") != sha256_file(folder.unit_dir(unit) / UNIT_FILE):
        raise UserError(f"{where}/{UNIT_FILE} is not the one manifest.json vouches for (edited or copied in); "
                        "run biasbench verify, or regenerate with --force")
    listed = manifest["configs"].get(config.name)
    try:
        vouched = listed["splits"][split]["fingerprint"]
    except (KeyError, TypeError):
        vouched = None
    if vouched != info["fingerprint"]:
        raise UserError(f"{folder.path}: config {config.name} {split} is not the content manifest.json vouches for; "
                        "run biasbench verify, or regenerate with --force")
    for name in info["files"]:
        if manifest["files"].get(f"data/{unit}/{name}") != meta["files"].get(name):
            raise UserError(f"{where}/{name}: its sha256 in unit.json and manifest.json differ; "
                            "run biasbench verify, or regenerate with --force")


def check_shards(folder: DatasetFolder, config: Config, split: str) -> None:
    """Each shard's bytes are the ones unit.json (and so manifest.json) records."""
    info = config.splits[split]
    meta = config.unit if info["unit"] == config.name else config.required[info["unit"]]
    for name in info["files"]:
        path = folder.unit_dir(info["unit"]) / name
        if path.is_file() and sha256_file(path) != meta["files"].get(name):
            raise UserError(f"{path} is not the shard its manifest vouches for (sha256 differs: edited or damaged); "
                            "regenerate with --force")


def check_ranges(label: np.ndarray, bias: np.ndarray, sizes: tuple[int, int] | None, where: str) -> None:
    """Labels and bias labels inside the schema's classes: a crafted 10 or -1 is refused, not trained on."""
    if sizes is None:
        return
    for what, values, n in (("label", label, sizes[0]), ("bias_label", bias, sizes[1])):
        if len(values) and (int(values.min()) < 0 or int(values.max()) >= n):
            raise UserError(f"{where}: {what} values run from {int(values.min())} to {int(values.max())}, outside "
                            f"0..{n - 1}; refusing it (regenerate with --force)")


def config_of(folder: DatasetFolder, ratio: Decimal, split: str) -> Config:
    """One complete config holding `split`, vouched for by the manifest."""
    name = config_name(ratio)
    configs = {c.name: c for c in folder.configs()}
    if name not in configs:
        have = ", ".join(configs) or "none"
        raise UserError(
            f"{folder.path} has no complete config {name} (have: {have}); "
            f"run: biasbench generate {folder.dataset} --ratio {name}"
        )
    config = configs[name]
    if split not in config.splits:
        raise UserError(f"config {name} has no split {split!r}; splits: {', '.join(config.splits)}")
    vouch(folder, config, split)
    return config


def find_split(folder: DatasetFolder, ratio: Decimal, split: str) -> tuple[list[Path], str]:
    """Shard paths and recorded fingerprint of one split of one config (vouched for by the manifest)."""
    config = config_of(folder, ratio, split)
    return [folder.path / f for f in config.files(split)], config.splits[split]["fingerprint"]


def arrays_from_files(paths: list[Path], fingerprint: str = "") -> SplitArrays:
    """Decode the shards of one split (in the given order)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]} is missing; regenerate with --force")
    try:
        table = read_split(paths)
        png = table.column("image").combine_chunks().field("bytes").to_pylist()
        images = np.stack([decode(b) for b in png])
        if images.ndim == 3:
            images = images[..., None]
        return SplitArrays(
            images=images,
            label=table.column("label").to_numpy().astype(np.int64),
            bias=table.column("bias_label").to_numpy().astype(np.int64),
            aligned=table.column("aligned").to_numpy().astype(bool),
            source_index=table.column("source_index").to_numpy().astype(np.int64),
            fingerprint=fingerprint,
            png=png,
        )
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged shard: pyarrow ArrowInvalid, PIL OSError, missing column
        raise UserError(f"{paths[0].parent}: a parquet shard is damaged ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'}); "
                        "regenerate with --force") from None


def read_arrays(folder: DatasetFolder, ratio: Decimal, split: str, verify: bool = True,
                sizes: tuple[int, int] | None = None) -> SplitArrays:
    """Decode a split; with `verify`, check its content against the recorded fingerprint."""
    return read_config(folder, config_of(folder, ratio, split), split, verify, sizes)


def read_config(folder: DatasetFolder, config: Config, split: str, verify: bool = True,
                sizes: tuple[int, int] | None = None) -> SplitArrays:
    """The one verified reader (run, export, publish, preview): the manifest vouches for the unit, each shard's
    sha256 is the recorded one, the decoded content has the recorded fingerprint, labels lie in `sizes`."""
    vouch(folder, config, split)
    paths, fingerprint = [folder.path / f for f in config.files(split)], config.splits[split]["fingerprint"]
    arrays = arrays_from_files(paths, fingerprint)  # a damaged shard is named as such first
    check_ranges(arrays.label, arrays.bias, sizes, str(paths[0].parent) if paths else str(folder.path))
    if verify and arrays.computed_fingerprint() != fingerprint:
        raise UserError(
            f"{paths[0].parent}: {split} content does not match its recorded fingerprint; "
            "the files were modified or damaged, regenerate with --force"
        )
    if verify:  # same content, other bytes (a re-encoded shard) is still not what the manifest vouches for
        check_shards(folder, config, split)
    return arrays
