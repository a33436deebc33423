"""Reading a generated split back into numpy arrays (decoded images, labels)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from biasbench.errors import UserError
from biasbench.dataset_format.fingerprint import pixel_digest, split_fingerprint
from biasbench.dataset_format.folder import DatasetFolder
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

    def computed_fingerprint(self) -> str:
        n = len(self.label)
        digests = np.array([pixel_digest(im) for im in self.images], dtype="S32")
        shapes = np.tile(np.array(self.images.shape[1:], dtype=np.uint16), (n, 1))
        return split_fingerprint(digests, shapes, self.label, self.bias, self.aligned, self.source_index)


def find_split(folder: DatasetFolder, ratio: Decimal, split: str) -> tuple[list[Path], str]:
    """Shard paths and recorded fingerprint of one split of one config."""
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
    return [folder.path / f for f in config.files(split)], config.splits[split]["fingerprint"]


def arrays_from_files(paths: list[Path], fingerprint: str = "") -> SplitArrays:
    """Decode the shards of one split (in the given order)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]} is missing; regenerate with --force")
    try:
        table = read_split(paths)
        images = np.stack([decode(b) for b in table.column("image").combine_chunks().field("bytes").to_pylist()])
        if images.ndim == 3:
            images = images[..., None]
        return SplitArrays(
            images=images,
            label=table.column("label").to_numpy().astype(np.int64),
            bias=table.column("bias_label").to_numpy().astype(np.int64),
            aligned=table.column("aligned").to_numpy().astype(bool),
            source_index=table.column("source_index").to_numpy().astype(np.int64),
            fingerprint=fingerprint,
        )
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged shard: pyarrow ArrowInvalid, PIL OSError, missing column
        raise UserError(f"{paths[0].parent}: a parquet shard is damaged ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'}); "
                        "regenerate with --force") from None


def read_arrays(folder: DatasetFolder, ratio: Decimal, split: str, verify: bool = True) -> SplitArrays:
    """Decode a split; with `verify`, check its content against the recorded fingerprint."""
    paths, fingerprint = find_split(folder, ratio, split)
    arrays = arrays_from_files(paths, fingerprint)
    if verify and arrays.computed_fingerprint() != fingerprint:
        raise UserError(
            f"{paths[0].parent}: {split} content does not match its recorded fingerprint; "
            "the files were modified or damaged, regenerate with --force"
        )
    return arrays
