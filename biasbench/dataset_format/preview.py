"""A picture of the shortcut: per class, a row of bias-aligned and a row of bias-conflicting examples.

The selection is the first `PER_ROW` aligned and the first `PER_ROW`
conflicting training rows of each class, in row order, so the image is a
pure function of the split; it is encoded with biasbench's own PNG writer,
so `biasbench preview` reproduces the file in the dataset folder byte for byte.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from biasbench.dataset_format.png import encode_rgb

PER_ROW = 8
GAP, CLASS_GAP, BACKGROUND = 2, 8, 48
TARGET = 56  # cell side in pixels (28x28 digits are doubled, large images subsampled)


def select(labels: np.ndarray, aligned: np.ndarray, n_classes: int, k: int = PER_ROW) -> list[tuple[list[int], list[int]]]:
    out = []
    for c in range(n_classes):
        in_class = labels == c
        out.append((np.flatnonzero(in_class & aligned)[:k].tolist(), np.flatnonzero(in_class & ~aligned)[:k].tolist()))
    return out


def _cell(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h = image.shape[0]
    if h < TARGET:
        f = TARGET // h
        image = np.repeat(np.repeat(image, f, axis=0), f, axis=1)
    elif h > TARGET:
        step = int(np.ceil(h / TARGET))
        image = image[::step, ::step]
    return image


def render(get_image: Callable[[int], np.ndarray], labels: np.ndarray, aligned: np.ndarray, n_classes: int) -> bytes:
    """PNG bytes of the preview grid; `get_image(i)` returns row i's decoded image (H, W, C)."""
    picks = select(labels, aligned, n_classes)
    sample = next((i for a, c in picks for i in a + c), None)
    side = _cell(get_image(sample)).shape[0] if sample is not None else TARGET
    width = PER_ROW * (side + GAP) + GAP
    rows = []
    for aligned_rows, conflicting_rows in picks:
        for indices in (aligned_rows, conflicting_rows):
            strip = np.full((side + GAP, width, 3), BACKGROUND, dtype=np.uint8)
            for j, i in enumerate(indices):
                cell = _cell(get_image(i))[:side, :side]
                x = GAP + j * (side + GAP)
                strip[GAP : GAP + cell.shape[0], x : x + cell.shape[1]] = cell
            rows.append(strip)
        rows.append(np.full((CLASS_GAP, width, 3), BACKGROUND, dtype=np.uint8))
    grid = np.concatenate(rows[:-1], axis=0)
    return encode_rgb(grid[None])[0]
