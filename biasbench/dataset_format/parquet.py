"""Writing and reading one split as parquet shards in the `datasets` layout.

Shard and row-group sizes are decided here (and stated in the cards):
- shards of at most 500 MB, the `datasets` default, named
  `<split>-0000K-of-0000N.parquet` like `push_to_hub`;
- row groups of about 2 MB: the Hub's viewer reads a whole row group to show
  a page and fails above ~286 MiB; `datasets` uses 100 rows for images, which
  for 28x28 PNGs (~0.4 kB) would make row-group metadata outweigh the data.
Compression: zstd. The PNG payloads are already deflated, but their fixed
~57-byte headers and chunk framing repeat in every row: zstd makes the CMNIST
train shard 14% smaller than no compression (snappy: 10%), measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biasbench.errors import UserError
from biasbench.dataset_format.schema import COLUMNS, Schema

MAX_SHARD_BYTES = 500 * 1000 * 1000
ROW_GROUP_BYTES = 2 * 1024 * 1024


@dataclass
class SplitRows:
    """One split in memory: encoded images plus labels, in row order."""

    png: list[bytes]
    pixel_digests: np.ndarray  # (N,) S32
    shapes: np.ndarray  # (N, 3) uint16
    label: np.ndarray  # int64
    bias: np.ndarray  # int64
    aligned: np.ndarray  # bool
    source_index: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.label)


def _shard_bounds(sizes: np.ndarray, limit: int) -> list[tuple[int, int]]:
    bounds, start, acc = [], 0, 0
    for i, s in enumerate(sizes):
        if acc and acc + s > limit:
            bounds.append((start, i))
            start, acc = i, 0
        acc += int(s)
    bounds.append((start, len(sizes)))
    return bounds


# The columns are built from their buffers, not with pa.array(): pa.array() imports pandas (~0.5 s, once per
# process, for a check that numpy arrays and lists of bytes never need), which was a tenth of a CMNIST run
# and serial time in every generation. Same arrays, same file bytes.
def _binary(values: list[bytes]) -> pa.Array:
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=offsets[1:])
    if offsets[-1] >= 2**31:  # a shard holds at most MAX_SHARD_BYTES, but stay correct regardless
        return pa.array(values, type=pa.binary())
    return pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                            pa.py_buffer(b"".join(values))])


def _int64(values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(np.ascontiguousarray(values, "<i8"))])


def _bool(values: np.ndarray) -> pa.Array:
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def write_split(directory: Path, split: str, rows: SplitRows, schema: Schema) -> list[str]:
    """Write `rows` as shards under `directory`; returns the file names."""
    sizes = np.fromiter((len(b) for b in rows.png), dtype=np.int64, count=len(rows.png))
    bounds = _shard_bounds(sizes, MAX_SHARD_BYTES) if len(rows) else [(0, 0)]
    mean = float(sizes.mean()) if len(sizes) else 1.0
    row_group = int(min(max(ROW_GROUP_BYTES // max(mean, 1.0), 100), 1_000_000))
    arrow_schema = schema.arrow()
    names = []
    for k, (a, b) in enumerate(bounds):
        image = pa.StructArray.from_arrays(
            [_binary(rows.png[a:b]), pa.nulls(b - a, type=pa.string())],
            names=["bytes", "path"],
        )
        table = pa.Table.from_arrays(
            [
                image,
                _int64(rows.label[a:b]),
                _int64(rows.bias[a:b]),
                _bool(rows.aligned[a:b]),
                _int64(rows.source_index[a:b]),
            ],
            schema=arrow_schema,
        )
        name = f"{split}-{k:05d}-of-{len(bounds):05d}.parquet"
        pq.write_table(
            table,
            directory / name,
            row_group_size=row_group,
            compression="zstd",
            use_dictionary=["label", "bias_label"],
            write_statistics=["label", "bias_label", "aligned", "source_index"],
        )
        names.append(name)
    return names


def read_split(paths: list[Path]) -> pa.Table:
    """Concatenate the shards of one split, in shard order; a damaged or foreign shard is a one-line error."""
    tables = []
    for p in sorted(paths):
        try:
            table = pq.read_table(p)
        except (OSError, pa.ArrowException) as exc:
            raise UserError(f"{p} is not a readable parquet shard ({type(exc).__name__}); "
                            "the file is damaged: regenerate with --force") from None
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise UserError(f"{p} has no column {', '.join(missing)}: not a biasbench shard; regenerate with --force")
        tables.append(table)
    if not tables:
        raise UserError("a split lists no parquet shard; regenerate with --force")
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
