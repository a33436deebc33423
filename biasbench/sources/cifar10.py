"""CIFAR-10 from the official "python version" (pickled batches), read safely and verified by md5.

The batches are pickles, and unpickling runs whatever a file names. The
reader admits only what the official files contain (dicts, lists, strings,
ints, and numpy arrays rebuilt through `_reconstruct`/`ndarray`/`dtype`);
anything else, such as a crafted file naming `os.system`, stops with a
clear error before it can run.

Accepted layouts: the official archive `cifar-10-python.tar.gz` (read
in place, nothing extracted), its extracted `cifar-10-batches-py/`, or a
folder holding the batch files.
"""

from __future__ import annotations

import _codecs
import io
import pickle
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasbench.errors import UserError
from biasbench.sources.common import (
    SourceFile,
    download_with_torchvision,
    env_source_dir,
    md5_hex,
    sha256_hex,
    sources_cache,
)

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
# md5 of each file of the official release (https://www.cs.toronto.edu/~kriz/cifar.html, torchvision's list)
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}


class _Forbidden(pickle.UnpicklingError):
    """A pickle asked for something the official files never contain."""


def _latin1_encode(text: str, encoding: str = "utf-8", *args) -> bytes:
    # pickles written by Python 3 at protocol 2 spell bytes as _codecs.encode(str, 'latin1')
    if encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise _Forbidden(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return _codecs.encode(text, "latin1")


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        raise _Forbidden(f"global '{module}.{name}' is not allowed in a CIFAR-10 batch")


def load_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle one batch safely -> images (N, 32, 32, 3) uint8 (HWC), labels (N,) int64."""
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Forbidden as exc:
        raise UserError(f"{where}: refused to unpickle: {exc} (a crafted or foreign file?)") from None
    except Exception as exc:  # truncated or garbage bytes
        raise UserError(f"{where}: not a readable CIFAR-10 batch ({type(exc).__name__})") from None
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise UserError(f"{where}: not a CIFAR-10 batch (expected a dict with 'data' and 'labels')")
    images, labels = batch["data"], batch["labels"]
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == 3072):
        raise UserError(f"{where}: 'data' is not an (N, 3072) uint8 array")
    if not (isinstance(labels, list) and len(labels) == len(images) and all(isinstance(x, int) for x in labels)):
        raise UserError(f"{where}: 'labels' is not a list of {len(images)} integers")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"{where}: labels outside 0..9")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


@dataclass(frozen=True)
class CIFAR10:
    train_images: np.ndarray  # (50000, 32, 32, 3) uint8
    train_labels: np.ndarray  # (50000,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    files: tuple[SourceFile, ...]

    @property
    def verified(self) -> bool:
        return all(f.verified for f in self.files)


def _read_files(source: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, where) for the six batches, from an archive or a folder."""
    archive = source if source.is_file() else source / ARCHIVE
    if archive.is_file():
        try:
            with tarfile.open(archive, "r:gz") as tar:
                found = {}
                for name in OFFICIAL_MD5:
                    try:
                        member = tar.getmember(f"{FOLDER}/{name}")
                    except KeyError:
                        continue
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[name] = (handle.read(), f"{archive}:{FOLDER}/{name}")
                return found
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise UserError(f"{archive} is not a readable tar.gz archive ({type(exc).__name__})") from None
    folder = source / FOLDER if (source / FOLDER).is_dir() else source
    return {n: ((folder / n).read_bytes(), str(folder / n)) for n in OFFICIAL_MD5 if (folder / n).is_file()}


def load_cifar10(source: Path, allow_unverified: bool = False) -> CIFAR10:
    source = Path(source)
    if not source.exists():
        raise UserError(f"source {source} does not exist")
    found = _read_files(source)
    missing = [n for n in OFFICIAL_MD5 if n not in found]
    if missing:
        raise UserError(f"CIFAR-10 batch file(s) {', '.join(missing)} not found in {source} "
                        f"(expected {ARCHIVE}, {FOLDER}/ or the batch files)")
    files, parts = [], {}
    # 180 MB of md5 + sha256 on two threads (hashlib releases the GIL) while this one unpickles:
    # the source stage is serial in `generate`, so it bounds the speed-up of --workers.
    with ThreadPoolExecutor(max_workers=2) as pool:
        md5s = {n: pool.submit(md5_hex, found[n][0]) for n in OFFICIAL_MD5}
        shas = {n: pool.submit(sha256_hex, found[n][0]) for n in OFFICIAL_MD5}
        for name, md5 in OFFICIAL_MD5.items():
            data, where = found[name]
            digest = md5s[name].result()
            verified = digest == md5
            if not verified and not allow_unverified:
                raise UserError(
                    f"{where}: md5 is {digest}, the official {name} has {md5}; re-download it, or pass "
                    "--allow-unverified to build an (unofficial) dataset anyway"
                )
            parts[name] = load_batch(data, where)
            files.append(SourceFile(name, where, digest, shas[name].result(), verified))
    train = [parts[f"data_batch_{i}"] for i in range(1, 6)]
    return CIFAR10(
        train_images=np.concatenate([t[0] for t in train]),
        train_labels=np.concatenate([t[1] for t in train]),
        test_images=parts["test_batch"][0],
        test_labels=parts["test_batch"][1],
        files=tuple(files),
    )


def download_cifar10(cache_dir: Path | None = None) -> Path:
    """Download the official archive with torchvision (the path real users take)."""
    root = Path(cache_dir) if cache_dir else sources_cache()
    if (root / ARCHIVE).is_file() or (root / FOLDER).is_dir():
        return root

    def fetch() -> None:
        from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

        TorchvisionCIFAR10(str(root), train=True, download=True)

    download_with_torchvision(fetch, root, "CIFAR-10", "cifar-10-python.tar.gz or cifar-10-batches-py/")
    return root


def resolve_cifar10(source_dir: Path | None, allow_unverified: bool = False) -> CIFAR10:
    """--source-dir, else $BIASBENCH_SOURCES, else a torchvision download into the cache."""
    chosen = source_dir or env_source_dir() or download_cifar10()
    return load_cifar10(chosen, allow_unverified=allow_unverified)
