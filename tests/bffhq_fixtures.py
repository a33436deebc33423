"""Tiny BFFHQ sources for tests: a fake release and a fake FFHQ folder with an FFHQ-Aging-style CSV.

Images are random noise (FFHQ is not available here); sizes are small so a
whole build takes a second or two.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from biasbench.protocol import BFFHQProtocol

AGE_GROUPS = ("0-2", "3-6", "7-9", "10-14", "15-19", "20-29", "30-39", "40-49", "50-69", "70-120")
YOUNG, OLD = ("10-14", "15-19", "20-29"), ("40-49", "50-69")

# 200 train images per class: 1, 2, 4 and 10 conflicting at 0.5/1/2/5 %; 3 per group in valid and in test
SMALL = BFFHQProtocol(train_per_class=200, eval_per_group=3, image_size=16,
                      release_counts=(("0.5pct/align", 40), ("0.5pct/conflict", 4), ("valid", 8), ("test", 8)))


def png(rng: np.random.Generator, size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_release(root: Path, seed: int = 0) -> Path:
    """0.5pct/align (20 per class), 0.5pct/conflict (2 per class), valid and test (2 per group), 12x12."""
    rng = np.random.default_rng(seed)
    next_id = iter(range(100, 10_000, 7))
    plan = [("0.5pct/align", 20, True), ("0.5pct/conflict", 2, False)]
    for folder, per_class, aligned in plan:
        for age in (0, 1):
            gender = age if aligned else 1 - age
            d = root / folder / str(age)
            d.mkdir(parents=True, exist_ok=True)
            for _ in range(per_class):
                (d / f"{next(next_id)}_{age}_{gender}.png").write_bytes(png(rng, 12))
    for folder in ("valid", "test"):
        d = root / folder
        d.mkdir(parents=True)
        for age in (0, 1):
            for gender in (0, 1):
                for _ in range(2):
                    (d / f"{next(next_id)}_{age}_{gender}.png").write_bytes(png(rng, 12))
    return root


def ffhq_rows(n_per_group: dict[tuple[str, str], int], seed: int = 0) -> list[dict]:
    """FFHQ-Aging-like rows: n images per (age group, gender), ids shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for (group, gender), n in n_per_group.items():
        rows += [{"age_group": group, "gender": gender} for _ in range(n)]
    ids = rng.permutation(len(rows) + 50)[: len(rows)]
    for row, i in zip(rows, ids):
        row.update(image_number=int(i), age_group_confidence="0.9", gender_confidence="0.99")
    return rows


def default_rows(seed: int = 0) -> list[dict]:
    """Enough for SMALL at 5 %: per class 200 - 1 aligned and 10 conflicting after 6 held out per group."""
    counts = {}
    for g in YOUNG:
        counts[(g, "female")] = 72
        counts[(g, "male")] = 6
    counts[("40-49", "male")] = 110
    counts[("50-69", "male")] = 100
    counts[("40-49", "female")] = 9
    counts[("50-69", "female")] = 9
    counts[("30-39", "female")] = 5  # neither young nor old: unused
    counts[("3-6", "male")] = 5
    return ffhq_rows(counts, seed)


def write_ffhq(root: Path, rows: list[dict], size: int = 24, columns: tuple[str, ...] | None = None,
               skip_images: int = 0) -> Path:
    """FFHQ's thumbnails layout (`thumbnails/<thousands>/<id:05d>.png`) plus `ffhq_aging_labels.csv`."""
    rng = np.random.default_rng(1)
    columns = columns or ("image_number", "age_group", "age_group_confidence", "gender", "gender_confidence")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "ffhq_aging_labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    for row in rows[skip_images:]:
        i = int(row["image_number"])
        d = root / "thumbnails" / f"{i // 1000 * 1000:05d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:05d}.png").write_bytes(png(rng, size))
    return root
