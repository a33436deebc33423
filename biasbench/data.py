"""Generated splits as in-memory tensors for training.

Decoding 55k PNGs takes about a second; the runner loads the same split for
every run, so the decoded arrays are cached beside the data in
`<dataset>/.cache/tensors/<fingerprint>.npz`. The key is the content
fingerprint, so a regenerated split is never served stale; and a cache is
trusted for what it holds, not for its name: on every read its arrays are
fingerprinted again (about 0.2 s for 55k CMNIST images) and compared with
the split's recorded fingerprint. A damaged or foreign cache is removed and
rebuilt from the parquet shards (themselves checked against the same
fingerprint), so a run never trains on data whose fingerprint it records
but does not have.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import torch

from biasbench import atomic, safe_paths
from biasbench.errors import UserError
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.dataset_format.read import SplitArrays, find_split, read_arrays
from biasbench.paths import data_root, dataset_dir
from biasbench.protocol import CANONICAL_SEED
from biasbench.ratios import parse_ratio

CACHE_DIR = ".cache/tensors"


@dataclass
class TensorSplit:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    bias: torch.Tensor  # (N,) int64
    aligned: torch.Tensor  # (N,) bool
    source_index: torch.Tensor  # (N,) int64
    fingerprint: str

    def __len__(self) -> int:
        return len(self.labels)


def _to_tensors(a: SplitArrays) -> TensorSplit:
    return TensorSplit(
        images=torch.from_numpy(np.ascontiguousarray(a.images.transpose(0, 3, 1, 2))),
        labels=torch.from_numpy(a.label),
        bias=torch.from_numpy(a.bias),
        aligned=torch.from_numpy(a.aligned),
        source_index=torch.from_numpy(a.source_index),
        fingerprint=a.fingerprint,
    )


def _save(path: Path, a: SplitArrays) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, images=a.images, label=a.label, bias=a.bias, aligned=a.aligned, source_index=a.source_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, buffer.getvalue())


def _load(path: Path, fingerprint: str) -> SplitArrays | None:
    """The cached arrays if they are what `fingerprint` names; None (and the file gone) if not."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = SplitArrays(
                z["images"], z["label"], z["bias"], z["aligned"], z["source_index"], fingerprint
            )
        if arrays.images.dtype == np.uint8 and arrays.images.ndim == 4 and arrays.computed_fingerprint() == fingerprint:
            return arrays
    except Exception:  # noqa: BLE001 - any damage (BadZipFile, truncation, wrong dtypes): decode again
        pass
    try:
        path.unlink()
    except OSError:
        pass
    return None


def _cache_path(path: Path, fingerprint: str) -> Path:
    """<dataset>/.cache/tensors/<fingerprint>.npz through the checked path helpers: a fingerprint that is not
    64 hex digits, or a symbolic link on the way, is refused, so nothing is written or deleted outside."""
    name = safe_paths.plain_name(safe_paths.fingerprint(fingerprint, str(path)), "the tensor cache of")
    cache = path / CACHE_DIR / f"{name}.npz"
    if not safe_paths.no_symlink_below(path, cache):
        raise UserError(f"{path / CACHE_DIR} is reached through a symbolic link; a dataset folder holds none, "
                        "refusing it (remove the link)")
    return cache


def load(
    dataset: str,
    ratio: Decimal | str | float,
    split: str,
    root: Path | str | None = None,
    seed: int = CANONICAL_SEED,
    use_cache: bool = True,
    path: Path | str | None = None,
) -> TensorSplit:
    """uint8 images (N, C, H, W) plus label, bias, aligned and source index tensors.

    The dataset is ROOT/<dataset> (see biasbench.paths), or `path`: any
    dataset folder, or a Hub dataset id ('hf://OWNER/NAME' or 'OWNER/NAME'),
    fetched once into the Hub's cache.
    """
    ratio = ratio if isinstance(ratio, Decimal) else parse_ratio(str(ratio))
    if path is not None:
        from biasbench.hub.remote import fetch, hub_repo_id

        repo = hub_repo_id(str(path))
        path = fetch(repo) if repo else Path(path)
    else:
        path = dataset_dir(data_root(root), dataset, seed)
    if not path.is_dir():
        raise UserError(f"no generated {dataset} in {path.parent}; run: biasbench generate {dataset}")
    folder = DatasetFolder(path, dataset)
    _, fingerprint = find_split(folder, ratio, split)
    cache = _cache_path(path, fingerprint)
    arrays = _load(cache, fingerprint) if use_cache and cache.is_file() else None
    if arrays is None:
        arrays = read_arrays(folder, ratio, split, verify=True)
        if use_cache:
            try:
                _save(cache, arrays)
            except OSError:
                pass  # read-only data dir: still usable, just not cached
    return _to_tensors(arrays)
