"""Content fingerprints that do not depend on PNG, zlib or parquet versions.

A split's fingerprint is sha256 over its rows in order; a row contributes
sha256(pixels) (decoded image, H x W x C uint8, row-major), its shape
(3 x uint16 LE), label and bias_label (int64 LE), aligned (1 byte) and
source_index (int64 LE). The per-row pixel digest lets an image shared by
several configs be hashed once. A config's fingerprint hashes its splits'.
"""

from __future__ import annotations

import hashlib

import numpy as np

_ROW = np.dtype(
    [
        ("pixels", "S32"),
        ("shape", "<u2", (3,)),
        ("label", "<i8"),
        ("bias", "<i8"),
        ("aligned", "u1"),
        ("source_index", "<i8"),
    ]
)


def pixel_digest(image: np.ndarray) -> bytes:
    """sha256 of one decoded image's bytes (H, W, C uint8, C-order)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).digest()


def split_fingerprint(
    pixel_digests: np.ndarray,
    shapes: np.ndarray,
    label: np.ndarray,
    bias: np.ndarray,
    aligned: np.ndarray,
    source_index: np.ndarray,
) -> str:
    """Fingerprint of one split; `pixel_digests` is an (N,) array of 32-byte digests."""
    rows = np.zeros(len(label), dtype=_ROW)
    rows["pixels"] = pixel_digests
    rows["shape"] = shapes
    rows["label"] = label
    rows["bias"] = bias
    rows["aligned"] = aligned
    rows["source_index"] = source_index
    return hashlib.sha256(rows.tobytes()).hexdigest()


def config_fingerprint(split_fingerprints: dict[str, str]) -> str:
    text = "".join(f"{name}:{split_fingerprints[name]}\n" for name in sorted(split_fingerprints))
    return hashlib.sha256(text.encode()).hexdigest()
