"""Rendering each distinct (source image, attribute) once, in parallel, and assembling splits.

A generator describes its outputs as (split, ratio) -> (source split,
source index, labels, attributes) (see generators.assign). `distinct` finds
the distinct (source split, index, attribute) triples, the generator renders
those (`render_chunks`, order-preserving over a process pool, so the output
does not depend on the number of workers), and `assemble` maps rows back.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Callable

import numpy as np

from biasbench.dataset_format.parquet import SplitRows
from biasbench.dataset_format.png import encode_rgb
from biasbench.parallel import ordered_map
from biasbench.progress import Reporter

Key = tuple[str, "Decimal | None"]


def distinct(outputs: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[Key, np.ndarray]]:
    """Distinct (source split, index, attribute) triples and, per output, its rows' positions among them."""
    keys = {k: (src << 40) | (idx.astype(np.int64) << 8) | attr.astype(np.int64) for k, (src, idx, _, attr) in outputs.items()}
    joined = np.concatenate(list(keys.values())) if keys else np.zeros(0, np.int64)
    unique, inverse = np.unique(joined, return_inverse=True)
    where, offset = {}, 0
    for k, v in keys.items():
        where[k] = inverse[offset : offset + len(v)]
        offset += len(v)
    return unique >> 40, (unique >> 8) & ((1 << 32) - 1), unique & 0xFF, where


def encode_with_digests(images: np.ndarray) -> tuple[list[bytes], list[bytes]]:
    """PNG bytes and sha256 of the raw pixels (the fingerprint's per-row digest) of (N, H, W, 3) images."""
    return encode_rgb(images), [hashlib.sha256(im.tobytes()).digest() for im in images]


def render_chunks(fn: Callable, tasks: list, workers: int, reporter: Reporter, desc: str, total: int,
                  initializer: Callable | None = None, initargs: tuple = ()):
    """Run fn over tasks (each returns pngs, digests, *timings); concatenate in order.

    initializer(*initargs) runs once per worker first (see biasbench.parallel.ordered_map)."""
    pngs: list[bytes] = []
    digests: list[bytes] = []
    timings: np.ndarray | None = None
    bar = reporter.bar(total=total, desc=desc, unit="img")
    for p, d, *t in ordered_map(fn, tasks, workers, initializer, initargs):
        pngs += p
        digests += d
        timings = np.asarray(t, dtype=float) if timings is None else timings + np.asarray(t, dtype=float)
        bar.update(len(p))
    bar.close()
    return pngs, np.array(digests, dtype="S32"), (timings.tolist() if timings is not None else [])


def assemble(outputs: dict, where: dict, pngs: list[bytes], digests: np.ndarray, shape: tuple[int, int, int]) -> dict:
    """(split, ratio) -> SplitRows, rows in output order."""
    out = {}
    for key, (_, idx, labels, attrs) in outputs.items():
        sel = where[key]
        out[key] = SplitRows(
            png=[pngs[i] for i in sel],
            pixel_digests=digests[sel],
            shapes=np.tile(np.array(shape, dtype=np.uint16), (len(sel), 1)),
            label=labels.astype(np.int64),
            bias=attrs.astype(np.int64),
            aligned=attrs == labels,
            source_index=idx.astype(np.int64),
        )
    return out
