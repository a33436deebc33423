"""MNIST from the official IDX files, verified by the md5 of their content.

The md5 is taken over the *decompressed* bytes: gzip wrappers differ between
mirrors (and ../shared/data re-made them), the IDX content does not.
"""

from __future__ import annotations

import gzip
import zlib
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

# Official md5 of the decompressed files (yann.lecun.com, torchvision's list).
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
_SHAPES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}


@dataclass(frozen=True)
class MNIST:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    files: tuple[SourceFile, ...]

    @property
    def verified(self) -> bool:
        return all(f.verified for f in self.files)


def _candidates(source_dir: Path, name: str) -> list[Path]:
    dirs = [source_dir, source_dir / "raw", source_dir / "MNIST" / "raw", source_dir / "mnist"]
    return [d / f for d in dirs for f in (name, name + ".gz")]


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            return gzip.decompress(raw)
        return raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UserError(f"{path} is a damaged or truncated gzip file ({exc}); download it again") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_idx(data: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """Decode an IDX file (unsigned-byte type) into an array of its shape."""
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{path} is truncated (IDX header incomplete)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise UserError(f"{path} is truncated or padded: {len(data)} bytes, IDX header says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(source_dir: Path, allow_unverified: bool = False) -> MNIST:
    """Read and verify the four IDX files under `source_dir`.

    Accepts the files raw or gzipped, directly in `source_dir`, in `raw/`,
    or in torchvision's `MNIST/raw/` layout.
    """
    source_dir = Path(source_dir)
    if source_dir.is_file():
        raise UserError(f"--source-dir {source_dir} is a file; give the folder that holds the MNIST files")
    if not source_dir.is_dir():
        raise UserError(f"source directory {source_dir} does not exist")
    arrays: dict[str, np.ndarray] = {}
    files: list[SourceFile] = []
    located = {n: next((p for p in _candidates(source_dir, n) if p.is_file()), None) for n in OFFICIAL_MD5}
    missing = [n for n, p in located.items() if p is None]
    if missing:
        raise UserError(
            f"MNIST file(s) {', '.join(m + '[.gz]' for m in missing)} not found in {source_dir} "
            "(also looked in raw/, MNIST/raw/ and mnist/)"
        )
    for name, md5 in OFFICIAL_MD5.items():
        found = located[name]
        data = _read_bytes(found)
        digest = md5_hex(data)
        verified = digest == md5
        if not verified and not allow_unverified:
            raise UserError(
                f"{found}: md5 of the decompressed content is {digest}, the official {name} has {md5}; "
                "re-download it, or pass --allow-unverified to build an (unofficial) dataset anyway"
            )
        array = parse_idx(data, found)
        expected = _SHAPES[name]
        # --allow-unverified waives the checksums, not the shape: images are N x 28 x 28, labels N
        if array.ndim != len(expected) or array.shape[1:] != expected[1:] or (verified and array.shape != expected):
            raise UserError(f"{found} has shape {array.shape}, expected {expected} "
                            f"({'x'.join(str(d) for d in expected[1:]) or 'one label'} per item)")
        arrays[name] = array
        files.append(SourceFile(name, str(found), digest, sha256_hex(data), verified))
    for split in ("train", "t10k"):
        n_img = arrays[f"{split}-images-idx3-ubyte"].shape[0]
        n_lab = arrays[f"{split}-labels-idx1-ubyte"].shape[0]
        if n_img != n_lab:
            raise UserError(f"{source_dir}: {split} has {n_img} images but {n_lab} labels")
        labels = arrays[f"{split}-labels-idx1-ubyte"]
        if labels.size and int(labels.max()) > 9:
            raise UserError(f"{source_dir}: {split} labels go up to {int(labels.max())}; MNIST has digits 0-9")
        present = set(np.unique(labels).tolist())
        if present != set(range(10)):
            missing_digits = sorted(set(range(10)) - present)
            raise UserError(f"{source_dir}: {split} has no image of digit(s) {missing_digits}; every digit is needed")
    return MNIST(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"].astype(np.int64),
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
        files=tuple(files),
    )


def download_mnist(cache_dir: Path | None = None) -> Path:
    """Download MNIST with torchvision (the path real users take) and return its raw dir."""
    root = Path(cache_dir) if cache_dir else sources_cache()
    raw = root / "MNIST" / "raw"
    if all(any(p.is_file() for p in _candidates(root, n)) for n in OFFICIAL_MD5):
        return root

    def fetch() -> None:
        from torchvision.datasets import MNIST as TorchvisionMNIST

        TorchvisionMNIST(str(root), train=True, download=True)
        TorchvisionMNIST(str(root), train=False, download=True)

    download_with_torchvision(fetch, raw, "MNIST", "the four MNIST IDX files")
    return root


def resolve_mnist(source_dir: Path | None, allow_unverified: bool = False) -> MNIST:
    """--source-dir, else $BIASBENCH_SOURCES, else a torchvision download into the cache."""
    chosen = source_dir or env_source_dir() or download_mnist()
    return load_mnist(chosen, allow_unverified=allow_unverified)
