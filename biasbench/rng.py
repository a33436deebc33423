"""Counter-based randomness: every draw is a pure function of its key.

Generated datasets must be identical on every machine and must not depend on
which ratios were built, in which order, or by how many workers. A stateful
generator cannot promise that; a hash of (seed, stream, index) can. We use the
SplitMix64 finaliser on uint64 arrays (wrapping integer arithmetic, identical
everywhere) and derive floats without transcendental functions, whose last
bits may differ between CPUs and libm builds.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _stream_base(seed: int, stream: str) -> np.uint64:
    digest = hashlib.sha256(f"{seed}\x00{stream}".encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


def hash_keys(seed: int, stream: str, index: np.ndarray) -> np.ndarray:
    """uint64 pseudo-random keys for `index` (any int array) in a named stream."""
    x = np.asarray(index, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = _stream_base(seed, stream) + (x + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, stream: str, index: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) with 53 random bits, one per index."""
    return (hash_keys(seed, stream, index) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def standard_normal(seed: int, stream: str, index: np.ndarray, size: int) -> np.ndarray:
    """Approximately N(0, 1) draws, shape (len(index), size).

    Irwin-Hall: the sum of 12 uniforms minus 6 has mean 0 and variance 1 and
    is computed with additions only, so the bits are the same on every
    machine (Box-Muller's log/cos are not). Tails stop at +-6; for the colour
    jitter this feeds (sigma <= 0.05) the difference is invisible.
    """
    index = np.asarray(index, dtype=np.int64)
    out = np.empty((index.size, size), dtype=np.float64)
    for j in range(size):
        total = np.zeros(index.size, dtype=np.float64)
        for k in range(12):
            total += uniform(seed, f"{stream}/{j}/{k}", index)
        out[:, j] = total - 6.0
    return out


def rank(seed: int, stream: str, index: np.ndarray) -> np.ndarray:
    """Positions of `index` sorted by their keys (ties broken by index)."""
    index = np.asarray(index, dtype=np.int64)
    return np.lexsort((index, hash_keys(seed, stream, index)))
