"""A minimal PNG writer for many small RGB images.

PIL spends ~100-140 us per 28x28 image on object overhead; here the rows are
laid out for all images of a batch in one array operation and each image costs
one zlib call. Filter type 0 (none) on every row: for these images it gives
smaller files than Sub/Up (measured) and the output depends only on the zlib
library and level, both recorded in the manifest.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

ZLIB_LEVEL = 6  # zlib's default; level 9 is 2x slower for 1.5% smaller files
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_IEND = _chunk(b"IEND", b"")


def encode_rgb(images: np.ndarray, level: int = ZLIB_LEVEL, row_filter: int = 0) -> list[bytes]:
    """Encode (N, H, W, 3) uint8 images as 8-bit RGB PNG files.

    `row_filter` is the one PNG filter type used on every row: 0 (none, the
    default: best for the small synthetic images) or 2 (Up, each byte minus the
    one above: 24-27 % smaller than none on 128x128 photos, within 5 % of PIL's
    adaptive choice, measured on skimage's sample photos).
    """
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if row_filter not in (0, 2):
        raise ValueError(f"row_filter must be 0 (none) or 2 (up), got {row_filter}")
    n, h, w, _ = images.shape
    data = images.reshape(n, h, 3 * w)
    rows = np.zeros((n, h, 1 + 3 * w), dtype=np.uint8)
    rows[:, :, 0] = row_filter
    rows[:, :, 1:] = data
    if row_filter == 2:
        rows[:, 1:, 1:] -= data[:, :-1]  # uint8 arithmetic wraps modulo 256, as PNG's filters do
    head = _SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    return [head + _chunk(b"IDAT", zlib.compress(r.tobytes(), level)) + _IEND for r in rows]


def decode(data: bytes) -> np.ndarray:
    """Any PNG (or other PIL-readable image) -> (H, W, C) uint8; RGB for colour."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, TypeError) as exc:
        from biasbench.errors import UserError

        raise UserError(f"an image in the dataset is not a readable PNG ({type(exc).__name__}); the shard is "
                        "damaged: regenerate with --force") from None
