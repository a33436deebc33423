"""Shared fixtures: a small synthetic MNIST in the official IDX format, CLI runners."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_MNIST = SHARED_DATA / "mnist"

needs_shared_mnist = pytest.mark.skipif(
    not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"real MNIST not found at {SHARED_MNIST} (../shared/data beside the repository)",
)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def synthetic_mnist(n_train: int = 7000, n_test: int = 1000) -> dict[str, np.ndarray]:
    """Digit-like images from integer arithmetic only: identical on every machine."""

    def make(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(n, dtype=np.int64)[:, None, None] + offset
        y = np.arange(28, dtype=np.int64)[None, :, None]
        x = np.arange(28, dtype=np.int64)[None, None, :]
        labels = (i[:, 0, 0] * 7 + i[:, 0, 0] // 10) % 10
        d = labels[:, None, None]
        stroke = ((x - 14) ** 2 + (y - 14) ** 2 < (4 + d) ** 2) & ((x + y + d) % 3 != 0)
        images = np.where(stroke, (i * 37 + x * 11 + y * 5) % 200 + 56, 0).astype(np.uint8)
        return images, labels.astype(np.uint8)

    train_x, train_y = make(n_train, 0)
    test_x, test_y = make(n_test, 10**6)
    return {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }


def write_mnist(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (directory / name).write_bytes(data)
    return directory


@pytest.fixture(scope="session")
def fixture_mnist(tmp_path_factory) -> Path:
    """A synthetic MNIST source dir (7,000 train + 1,000 test); build with allow_unverified."""
    return write_mnist(tmp_path_factory.mktemp("mnist-src"), synthetic_mnist())


@pytest.fixture(scope="session")
def cmnist_root(fixture_mnist, tmp_path_factory) -> Path:
    """One CMNIST build (0.5, 1 and 5 %) on the fixture source, shared by every test that only reads it."""
    from decimal import Decimal

    from biasbench.generators.build import generate

    root = tmp_path_factory.mktemp("cmnist-shared")
    generate("cmnist", [Decimal("0.005"), Decimal("0.01"), Decimal("0.05")], root, 0, fixture_mnist,
             allow_unverified=True)
    return root


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `biasbench` in a fresh process (as a user would)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "biasbench.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny batches: one torch thread is several times faster than two on a shared, loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
