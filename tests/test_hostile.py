"""Hostile and unlucky inputs, one table: nothing read from a dataset folder, cache, record, checkpoint or
source tree writes outside its place, serves wrong data, or ends in a traceback.

Each row: the damaged state (a setup on a fresh copy of a small generated CMNIST), the command, the exit
code, a fragment of its message, and an optional check. Every row also checks that a sentinel folder
beside the data was not touched (nothing written outside) and, for refusals, that the error is one line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from biasbench.cli import main
from conftest import REPO, synthetic_mnist, write_mnist

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = ["--profile", "cpu", "--device", "cpu", "--ratio", "1pct", "--seeds", "1", "--steps", "2", "--eval-every", "2"]


@pytest.fixture(scope="module")
def small_cmnist(tmp_path_factory):
    """CMNIST at 1 % from a 1,500-image synthetic MNIST (valid 300): a copy per row is cheap."""
    from dataclasses import replace

    import biasbench.generators.cmnist as module
    from biasbench.generators.build import generate

    src = write_mnist(tmp_path_factory.mktemp("mnist"), synthetic_mnist(1500, 300))
    keep, module.GENERATOR = module.GENERATOR, module.ColoredMNIST(replace(module.CMNIST, valid_size=300))
    try:
        root = tmp_path_factory.mktemp("data")
        generate("cmnist", [Decimal("0.01")], root, 0, src, allow_unverified=True)
    finally:
        module.GENERATOR = keep
    return root


@dataclass
class Ctx:
    tmp: Path
    root: Path  # the data root holding cmnist/ (a private copy)
    outside: Path  # a sentinel folder: must be untouched
    out: Path  # where a command may write
    notes: dict = field(default_factory=dict)

    @property
    def ds(self) -> Path:
        return self.root / "cmnist"

    def unit(self, name: str = "1pct") -> dict:
        return json.loads((self.ds / "data" / name / "unit.json").read_text())

    def write_unit(self, meta, name: str = "1pct") -> None:
        (self.ds / "data" / name / "unit.json").write_text(json.dumps(meta))

    def shard(self, unit: str = "1pct", split: str = "train") -> Path:
        return self.ds / "data" / unit / f"{split}-00000-of-00001.parquet"

    def results(self) -> Path:
        return self.tmp / "results"


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()}


# ---- setups ---------------------------------------------------------------------------------------

def files_entry(name: str):
    def setup(c: Ctx) -> None:
        meta = c.unit()
        meta["splits"]["train"]["files"] = [name]
        meta["files"][name] = "0" * 64
        c.write_unit(meta)
    return setup


def traversal_to_victim(c: Ctx) -> None:
    files_entry("../../../outside/victim.txt")(c)


def symlinked_shard(c: Ctx) -> None:
    target = c.outside / "victim.txt"
    c.shard().unlink()
    c.shard().symlink_to(target)


def symlinked_unit(c: Ctx) -> None:
    real = c.tmp / "elsewhere-1pct"
    shutil.move(str(c.ds / "data" / "1pct"), real)
    (c.ds / "data" / "1pct").symlink_to(real, target_is_directory=True)


def unit_not_object(c: Ctx) -> None:
    c.write_unit(["not", "a", "unit"])


def unit_renamed(c: Ctx) -> None:
    meta = c.unit()
    meta["unit"] = "common"
    c.write_unit(meta)


def unit_not_json(c: Ctx) -> None:
    (c.ds / "data" / "1pct" / "unit.json").write_text("{ not json")


def cache_path(c: Ctx) -> Path:
    from biasbench.data import load

    load("cmnist", "1pct", "train", root=c.root)  # builds the cache
    (cache,) = (c.ds / ".cache" / "tensors").glob("*.npz")
    return cache


def cache_permuted_labels(c: Ctx) -> None:
    cache = cache_path(c)
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["label"] = np.roll(arrays["label"], 1)
    np.savez(cache, **arrays)
    c.notes["cache"] = cache


def cache_flipped_byte(c: Ctx) -> None:
    cache = cache_path(c)
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[40] ^= 0xFF
    cache.write_bytes(bytes(data))
    c.notes["cache"] = cache


def cache_truncated(c: Ctx) -> None:
    cache = cache_path(c)
    cache.write_bytes(cache.read_bytes()[:100])
    c.notes["cache"] = cache


def shard_truncated(c: Ctx) -> None:
    c.shard().write_bytes(c.shard().read_bytes()[:500])


def shard_garbage(c: Ctx) -> None:
    c.shard().write_bytes(b"PAR1" + os.urandom(2000) + b"PAR1")


def shard_bad_png(c: Ctx) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(c.shard())
    images = table.column("image").combine_chunks()
    data = images.field("bytes").to_pylist()
    data[0] = b"\x89PNG not really"
    fixed = pa.StructArray.from_arrays([pa.array(data, pa.binary()), images.field("path")], ["bytes", "path"])
    pq.write_table(table.set_column(table.column_names.index("image"), "image", fixed), c.shard())


def shard_missing_columns(c: Ctx) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2, 3]}), c.shard())


def run_id(c: Ctx, method: str = "erm") -> str:
    from biasbench.dataset_format.folder import DatasetFolder
    from biasbench.baselines import configure

    (config,) = DatasetFolder(c.ds, "cmnist").configs()
    cfg = configure(method, "cmnist", Decimal("0.01"), 41, "cpu", int(config.splits["train"]["num_examples"]),
                    steps=2, eval_every=2)
    return cfg.run_id(config.fingerprint)


def foreign_checkpoint(c: Ctx) -> None:
    path = c.results() / "checkpoints" / f"{run_id(c)}.pt"
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 3, "weights": torch.zeros(2)}, path)


def garbage_checkpoint(c: Ctx) -> None:
    path = c.results() / "checkpoints" / f"{run_id(c)}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(300))


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {EVIL_MARK}",))


EVIL_MARK = Path("/tmp/biasbench-hostile-pickle-ran")


def pickle_checkpoint(c: Ctx) -> None:
    import pickle

    EVIL_MARK.unlink(missing_ok=True)
    path = c.results() / "checkpoints" / f"{run_id(c)}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"modules": _Evil()}))


def record_not_object(c: Ctx) -> None:
    path = c.results() / "runs" / f"{run_id(c)}.json"
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2, 3]")


def record_truncated(c: Ctx) -> None:
    path = c.results() / "runs" / f"{run_id(c)}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "biasbench-run/1", "run_id": ')


def exported(c: Ctx) -> None:
    assert main(["export", "cmnist", "--format", "disent", "--out", str(c.out), "--data-dir", str(c.root)]) == 0


def exported_then_edited(c: Ctx) -> None:
    exported(c)
    png = next((c.out / "cmnist" / "1pct" / "align").rglob("*.png"))
    png.write_bytes(png.read_bytes() + b"edited")


def nonempty_out(c: Ctx) -> None:
    c.out.mkdir()
    (c.out / "keep.txt").write_text("mine")


def mnist_variant(c: Ctx, change: Callable[[dict], None], n_train: int = 1500) -> Path:
    arrays = synthetic_mnist(n_train, 300)
    change(arrays)
    return write_mnist(c.tmp / "src", arrays)


def mnist_small(c: Ctx) -> None:
    c.notes["src"] = mnist_variant(c, lambda a: None, n_train=1000)


def mnist_20px(c: Ctx) -> None:
    def change(a):
        a["train-images-idx3-ubyte"] = a["train-images-idx3-ubyte"][:, :20, :20].copy()
    c.notes["src"] = mnist_variant(c, change)


def mnist_label_200(c: Ctx) -> None:
    def change(a):
        a["train-labels-idx1-ubyte"] = a["train-labels-idx1-ubyte"].copy()
        a["train-labels-idx1-ubyte"][5] = 200
    c.notes["src"] = mnist_variant(c, change)


def mnist_missing_digit(c: Ctx) -> None:
    def change(a):
        labels = a["train-labels-idx1-ubyte"].copy()
        labels[labels == 7] = 1
        a["train-labels-idx1-ubyte"] = labels
    c.notes["src"] = mnist_variant(c, change)


def mnist_ok(c: Ctx) -> None:
    c.notes["src"] = mnist_variant(c, lambda a: None, n_train=7000)


def mnist_as_file(c: Ctx) -> None:
    c.notes["src"] = c.tmp / "a-file"
    c.notes["src"].write_text("not a folder")


def mnist_bad_gzip(c: Ctx) -> None:
    src = mnist_variant(c, lambda a: None)
    path = src / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    c.notes["src"] = src


def mnist_bad_idx(c: Ctx) -> None:
    src = mnist_variant(c, lambda a: None)
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x01\x02\x03 not idx", mtime=0))
    c.notes["src"] = src


def release(c: Ctx) -> Path:
    from bffhq_fixtures import make_release

    c.notes["src"] = make_release(c.tmp / "release")
    return c.notes["src"]


def release_symlink(c: Ctx) -> None:
    root = release(c)
    outside_png = c.outside / "face.png"
    shutil.copy(next((root / "valid").glob("*.png")), outside_png)
    (root / "valid" / "999_0_0.png").symlink_to(outside_png)


def release_newline_name(c: Ctx) -> None:
    root = release(c)
    src = next((root / "valid").glob("*.png"))
    src.rename(root / "valid" / (src.name + "\n"))


def ffhq_nan_ages(c: Ctx) -> None:
    from bffhq_fixtures import default_rows, write_ffhq

    rows = default_rows()
    for r in rows:
        r["age"] = "nan"
    c.notes["src"] = write_ffhq(c.tmp / "ffhq", rows, columns=("image_number", "age", "gender"))


def nothing(c: Ctx) -> None:
    pass


# ---- checks after a row --------------------------------------------------------------------------

def cache_rebuilt(c: Ctx) -> None:
    from biasbench.dataset_format.folder import DatasetFolder
    from biasbench.dataset_format.read import read_arrays

    truth = read_arrays(DatasetFolder(c.ds, "cmnist"), Decimal("0.01"), "train")
    with np.load(c.notes["cache"]) as z:
        assert np.array_equal(z["label"], truth.label)  # the cache now holds the real split
    (record,) = [json.loads(p.read_text()) for p in (c.results() / "runs").glob("*.json")]
    assert record["run_id"] == run_id(c)  # the planned id: the fingerprint the data really has


def no_empty_dataset_folder(c: Ctx) -> None:
    assert not (c.out / "cmnist").exists()


def pickle_did_not_run(c: Ctx) -> None:
    assert not EVIL_MARK.exists()


def record_redone(c: Ctx) -> None:
    record = json.loads((c.results() / "runs" / f"{run_id(c)}.json").read_text())
    assert record["method"] == "erm" and record["history"]


def canonical_record(c: Ctx) -> None:
    (record,) = [json.loads(p.read_text()) for p in (c.results() / "runs").glob("*.json")]
    assert record["method"] == "disent" and "-disent-" in record["run_id"]


def skipped_export(c: Ctx) -> None:
    pass


# ---- the table -----------------------------------------------------------------------------------

def data(c: Ctx) -> list[str]:
    return ["--data-dir", str(c.root)]


@dataclass
class Row:
    id: str
    setup: Callable[[Ctx], None]
    args: Callable[[Ctx], list[str]]
    code: int
    fragment: str
    check: Callable[[Ctx], None] | None = None


ROWS = [
    # paths taken from metadata
    Row("traversal-publish", traversal_to_victim, lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)],
        2, "not a plain file name"),
    Row("traversal-export", traversal_to_victim,
        lambda c: ["export", "cmnist", "--format", "disent", "--out", str(c.out), *data(c)], 2, "not a plain file name"),
    Row("traversal-export-lff", traversal_to_victim,
        lambda c: ["export", "cmnist", "--format", "lff", "--out", str(c.out), *data(c)], 2, "not a plain file name"),
    Row("traversal-verify", traversal_to_victim, lambda c: ["verify", str(c.ds)], 2, "not a plain file name"),
    Row("traversal-run", traversal_to_victim, lambda c: ["run", "--method", "erm", *RUN, *data(c),
                                                         "--results", str(c.results())], 2, "not a plain file name"),
    Row("traversal-preview", traversal_to_victim,
        lambda c: ["preview", "cmnist", "--ratio", "1pct", "--out", str(c.out / "p.png"), *data(c)], 2,
        "not a plain file name"),
    Row("absolute-path", files_entry("/etc/passwd"), lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)],
        2, "not a plain file name"),
    Row("dotdot-inside", files_entry("sub/../train.parquet"),
        lambda c: ["export", "cmnist", "--format", "disent", "--out", str(c.out), *data(c)], 2, "not a plain file name"),
    Row("newline-name", files_entry("train-00000-of-00001.parquet\n"),
        lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)], 2, "not a plain file name"),
    Row("hidden-name", files_entry(".secret"), lambda c: ["verify", str(c.ds)], 2, "not a plain file name"),
    Row("symlinked-shard-export", symlinked_shard,
        lambda c: ["export", "cmnist", "--format", "disent", "--out", str(c.out), *data(c)], 2, "symbolic link"),
    Row("symlinked-shard-publish", symlinked_shard,
        lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)], 2, "symbolic link"),
    Row("symlinked-unit", symlinked_unit, lambda c: ["verify", str(c.ds)], 2, "symbolic link"),
    Row("unit-not-object", unit_not_object, lambda c: ["verify", str(c.ds)], 2, "not a biasbench unit"),
    Row("unit-renamed", unit_renamed, lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)], 2,
        "lies in data/1pct"),
    Row("unit-not-json", unit_not_json,
        lambda c: ["export", "cmnist", "--format", "disent", "--out", str(c.out), *data(c)], 2, "unreadable"),
    # caches trusted by name: checked on every read and rebuilt
    Row("cache-permuted-labels", cache_permuted_labels,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 0, "erm on cmnist",
        cache_rebuilt),
    Row("cache-flipped-byte", cache_flipped_byte,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 0, "erm on cmnist",
        cache_rebuilt),
    Row("cache-truncated", cache_truncated,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 0, "erm on cmnist",
        cache_rebuilt),
    # damaged shards
    Row("shard-truncated-run", shard_truncated,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 2,
        "not a readable parquet shard"),
    Row("shard-garbage-export", shard_garbage,
        lambda c: ["export", "cmnist", "--format", "lff", "--out", str(c.out), *data(c)], 2,
        "not a readable parquet shard"),
    Row("shard-bad-png-run", shard_bad_png,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 2, "not a readable PNG"),
    Row("shard-bad-png-export-lff", shard_bad_png,
        lambda c: ["export", "cmnist", "--format", "lff", "--out", str(c.out), *data(c)], 2, "not a readable PNG"),
    Row("shard-missing-columns", shard_missing_columns,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 2, "has no column"),
    Row("shard-truncated-verify", shard_truncated, lambda c: ["verify", str(c.ds)], 1, "sha256"),
    # checkpoints and records
    Row("foreign-checkpoint", foreign_checkpoint,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 2,
        "not a biasbench checkpoint"),
    Row("garbage-checkpoint", garbage_checkpoint,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 2, "damaged"),
    Row("pickle-checkpoint", pickle_checkpoint,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 2,
        "not a biasbench checkpoint", pickle_did_not_run),
    Row("record-not-object", record_not_object,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 0, "erm on cmnist",
        record_redone),
    Row("record-truncated", record_truncated,
        lambda c: ["run", "--method", "erm", *RUN, *data(c), "--results", str(c.results())], 0, "erm on cmnist",
        record_redone),
    Row("leaderboard-of-bad-records", record_not_object,
        lambda c: ["leaderboard", "--results", str(c.results()), "--out", str(c.out)], 0, "not a biasbench run record"),
    # command-line input
    Row("huge-seeds-run", nothing, lambda c: ["run", "--method", "erm", "--seeds", "99999999999", "--device", "cpu",
                                              *data(c)], 2, "--seeds"),
    Row("huge-seeds-sweep", nothing, lambda c: ["sweep", "--methods", "erm", "--seeds", "99999999999", "--dry-run",
                                                *data(c), "--results", str(c.results())], 2, "--seeds"),
    Row("method-capitalised", nothing, lambda c: ["run", "--method", "DisEnt", *RUN, *data(c),
                                                  "--results", str(c.results())], 0, "disent on cmnist",
        canonical_record),
    Row("unknown-method", nothing, lambda c: ["run", "--method", "rests", *RUN, *data(c)], 2, "unknown method"),
    Row("data-and-data-dir", nothing, lambda c: ["run", "--method", "erm", "--data", str(c.ds), *RUN, *data(c)], 2,
        "give one of them"),
    Row("density-out-of-range", nothing, lambda c: ["run", "--method", "rigl", "--density", "2", *RUN, *data(c)], 2,
        "--density"),
    Row("amp-on-cpu", nothing, lambda c: ["run", "--method", "erm", "--amp", "bf16", *RUN, *data(c)], 2,
        "--amp needs"),
    Row("unknown-profile", nothing, lambda c: ["run", "--method", "erm", "--profile", "fast", "--device", "cpu",
                                               *data(c)], 2, "invalid choice"),
    # exports compare content
    Row("export-again-same", exported,
        lambda c: ["export", "cmnist", "--format", "disent", "--out", str(c.out), *data(c)], 0, "with the same content"),
    Row("export-over-edited-png", exported_then_edited,
        lambda c: ["export", "cmnist", "--format", "disent", "--out", str(c.out), *data(c)], 2, "changed since"),
    Row("publish-into-nonempty", nonempty_out, lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)], 2,
        "is not empty"),
    # sources: --allow-unverified waives checksums, not sanity
    Row("mnist-1000-images", mnist_small, lambda c: ["generate", "cmnist", "--ratio", "1pct", "--allow-unverified",
                                                     "--source-dir", str(c.notes["src"]), "--out", str(c.out)], 2,
        "needs more than that", no_empty_dataset_folder),
    Row("mnist-20px", mnist_20px, lambda c: ["generate", "cmnist", "--ratio", "1pct", "--allow-unverified",
                                             "--source-dir", str(c.notes["src"]), "--out", str(c.out)], 2,
        "has shape", no_empty_dataset_folder),
    Row("mnist-label-200", mnist_label_200, lambda c: ["generate", "cmnist", "--ratio", "1pct", "--allow-unverified",
                                                       "--source-dir", str(c.notes["src"]), "--out", str(c.out)], 2,
        "labels go up to 200", no_empty_dataset_folder),
    Row("mnist-missing-digit", mnist_missing_digit,
        lambda c: ["generate", "cmnist", "--ratio", "1pct", "--allow-unverified", "--source-dir", str(c.notes["src"]),
                   "--out", str(c.out)], 2, "no image of digit", no_empty_dataset_folder),
    Row("ratio-rounds-to-zero", mnist_ok,
        lambda c: ["generate", "cmnist", "--ratio", "0.00001", "--allow-unverified", "--source-dir",
                   str(c.notes["src"]), "--out", str(c.out)], 2, "rounds to 0", no_empty_dataset_folder),
    Row("source-dir-is-a-file", mnist_as_file,
        lambda c: ["generate", "cmnist", "--source-dir", str(c.notes["src"]), "--out", str(c.out)], 2, "is a file",
        no_empty_dataset_folder),
    Row("mnist-truncated-gzip", mnist_bad_gzip,
        lambda c: ["generate", "cmnist", "--allow-unverified", "--source-dir", str(c.notes["src"]), "--out",
                   str(c.out)], 2, "damaged or truncated gzip", no_empty_dataset_folder),
    Row("mnist-not-idx", mnist_bad_idx,
        lambda c: ["generate", "cmnist", "--allow-unverified", "--source-dir", str(c.notes["src"]), "--out",
                   str(c.out)], 2, "not an IDX file", no_empty_dataset_folder),
    Row("bffhq-symlinked-image", release_symlink,
        lambda c: ["generate", "bffhq", "--source-dir", str(c.notes["src"]), "--out", str(c.out),
                   "--allow-unverified"], 2, "symbolic link"),
    Row("bffhq-newline-name", release_newline_name,
        lambda c: ["generate", "bffhq", "--source-dir", str(c.notes["src"]), "--out", str(c.out),
                   "--allow-unverified"], 2, "does not parse"),
    Row("bffhq-nan-ages", ffhq_nan_ages,
        lambda c: ["generate", "bffhq", "--source-dir", str(c.notes["src"]), "--out", str(c.out)], 2,
        "empty or nan ages"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_input(row: Row, small_cmnist, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(small_cmnist, root, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    c = Ctx(tmp_path, root, outside, tmp_path / "out")
    row.setup(c)
    capsys.readouterr()  # what the setup printed is not the row's
    before = tree_digest(outside)
    try:
        code = main(row.args(c))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == row.code, (out[-800:], err[-800:])
    assert "Traceback" not in err
    if row.code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert row.fragment in lines[0], lines[0]
    else:
        assert row.fragment in out + err, (out[-800:], err[-800:])
    assert tree_digest(outside) == before and (outside / "victim.txt").read_text() == "precious"
    if row.check is not None:
        row.check(c)


def test_the_table_is_large_enough():
    assert len(ROWS) >= 40 and len({r.id for r in ROWS}) == len(ROWS)


# ---- kill -9 during a --force rebuild from another source ----------------------------------------

KILL_AFTER_SHARDS = textwrap.dedent(
    """
    import os, signal, sys
    from biasbench.dataset_format import parquet
    n, calls = int(sys.argv[1]), [0]
    original = parquet.write_split
    def wrapped(*a, **k):
        out = original(*a, **k)
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    parquet.write_split = wrapped
    from biasbench.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2, 3])  # killed after the first, second, third shard of the rebuild
def test_kill_9_during_a_forced_rebuild_never_leaves_a_mixed_config_that_load_dataset_reads(tmp_path, n):
    from datasets import load_dataset

    from biasbench.dataset_format.folder import DatasetFolder

    first = write_mnist(tmp_path / "a", synthetic_mnist(7000, 1000))
    arrays = synthetic_mnist(7000, 1000)
    arrays["train-images-idx3-ubyte"] = arrays["train-images-idx3-ubyte"] // 2
    second = write_mnist(tmp_path / "b", arrays)
    out = tmp_path / "data"
    base = ["generate", "cmnist", "--ratio", "1pct,5pct", "--allow-unverified", "--out", str(out)]
    assert main([*base, "--source-dir", str(first)]) == 0
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SHARDS, str(n), *base, "--source-dir", str(second),
                             "--force"], cwd=REPO, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-1000:]
    path = out / "cmnist"
    # biasbench's own notion: a config is complete when its units' parameter hashes agree (one build)
    complete = {c.name for c in DatasetFolder(path, "cmnist").configs()}
    import yaml

    listed = {c["config_name"] for c in yaml.safe_load((path / "README.md").read_text().split("---")[1])["configs"]}
    assert listed - {"rebuild-in-progress"} <= complete  # the card never offers a mixed config
    loaded = []
    for name in ("1pct", "5pct"):
        try:
            load_dataset(str(path), name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - refused while it is being rebuilt: loud, not wrong
            pass
    assert set(loaded) <= complete
    resumed = subprocess.run([sys.executable, "-m", "biasbench.cli", *base, "--source-dir", str(second), "--force"],
                             cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-1000:]
    assert [c.name for c in DatasetFolder(path, "cmnist").configs()] == ["1pct", "5pct"]
    assert len(load_dataset(str(path), "1pct")["train"]) > 0


@pytest.mark.slow
def test_two_identical_runs_at_once_train_once(small_cmnist, tmp_path):
    results = tmp_path / "results"
    args = [sys.executable, "-m", "biasbench.cli", "run", "--method", "erm", *RUN, "--data-dir", str(small_cmnist),
            "--results", str(results)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum(o[1].decode().count("finished before, skipped") + o[0].decode().count("finished before, skipped")
               for o in outputs) == 1
    assert len(list((results / "runs").glob("*.json"))) == 1
    assert not list((results / "checkpoints").glob("*"))


# ==== round two (issue 27): one mechanism per class, each row: exit code, stderr lines, nothing lost ====

import errno  # noqa: E402


def _unit_path(c: Ctx, name: str = "1pct") -> Path:
    return c.ds / "data" / name / "unit.json"


def fingerprint_set(value: str, split: str = "train"):
    def setup(c: Ctx) -> None:
        meta = c.unit()
        meta["splits"][split]["fingerprint"] = value
        c.write_unit(meta)
    return setup


def params_set(key: str, value):
    def setup(c: Ctx) -> None:
        meta = c.unit()
        meta["params"][key] = value
        c.write_unit(meta)
    return setup


def cache_symlink(level: str):
    def setup(c: Ctx) -> None:
        target = c.outside / "elsewhere"
        target.mkdir()
        if level == ".cache":
            (c.ds / ".cache").symlink_to(target, target_is_directory=True)
        else:
            (c.ds / ".cache").mkdir(exist_ok=True)
            (c.ds / ".cache" / "tensors").symlink_to(target, target_is_directory=True)
    return setup


def data_symlink(c: Ctx) -> None:
    real = c.tmp / "elsewhere-data"
    shutil.move(str(c.ds / "data"), real)
    (c.ds / "data").symlink_to(real, target_is_directory=True)


def _rewrite_shard(c: Ctx, unit: str, split: str, column: str, change) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = c.shard(unit, split)
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    change(values)
    field = table.schema.field(column)
    pq.write_table(table.set_column(table.column_names.index(column), field, pa.array(values, field.type)), path)


def labels_edited(c: Ctx) -> None:
    """Labels changed in the shard; sha256 and fingerprint left stale (a careless edit)."""
    def change(v):
        v[0] = (v[0] + 1) % 10
    _rewrite_shard(c, "1pct", "train", "label", change)


def shard_reencoded(c: Ctx) -> None:
    """The same rows written again with other parquet settings: same fingerprint, other bytes."""
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(c.shard()), c.shard(), compression="gzip")


def forged(column: str, value: int, unit: str = "1pct", split: str = "train"):
    """A forger's edit: the shard changed and every sha256 and fingerprint recomputed to match."""
    def setup(c: Ctx) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from biasbench import __version__
        from biasbench.dataset_format.folder import DatasetFolder, dumps, sha256_file
        from biasbench.dataset_format.read import arrays_from_files

        path = c.shard(unit, split)
        table = pq.read_table(path)
        values = table.column(column).to_pylist()
        values[0] = value
        field = pa.field(column, pa.int64())
        pq.write_table(table.set_column(table.column_names.index(column), field, pa.array(values, pa.int64())), path)
        meta = c.unit(unit)
        meta["files"][path.name] = sha256_file(path)
        meta["splits"][split]["fingerprint"] = arrays_from_files([path]).computed_fingerprint()
        c.write_unit(meta, unit)
        folder = DatasetFolder(c.ds, "cmnist")
        (c.ds / "manifest.json").write_text(dumps(folder.build_manifest(__version__)))
    return setup


def unit_edited_not_manifest(c: Ctx) -> None:
    meta = c.unit()
    meta["provenance"] = {"edited": True}
    c.write_unit(meta)


def manifest_gone(c: Ctx) -> None:
    (c.ds / "manifest.json").unlink()


def manifest_garbage(c: Ctx) -> None:
    (c.ds / "manifest.json").write_text("{ not json")


def manifest_other_fingerprint(c: Ctx) -> None:
    manifest = json.loads((c.ds / "manifest.json").read_text())
    manifest["configs"]["1pct"]["splits"]["train"]["fingerprint"] = "a" * 64
    (c.ds / "manifest.json").write_text(json.dumps(manifest))


def card_points_train_at_test(c: Ctx) -> None:
    from biasbench.dataset_format.folder import sha256_file

    card = c.ds / "README.md"
    card.write_text(card.read_text().replace("data/1pct/train-00000-of-00001.parquet",
                                             "data/common/test-00000-of-00001.parquet"))
    manifest = json.loads((c.ds / "manifest.json").read_text())
    manifest["files"]["README.md"] = sha256_file(card)
    (c.ds / "manifest.json").write_text(json.dumps(manifest))


def five_pct_as_one_pct(c: Ctx) -> None:
    """The 5 % unit copied in as data/1pct with only its `unit` field edited."""
    from biasbench.generators.build import generate

    import biasbench.generators.cmnist as module
    from dataclasses import replace

    keep, module.GENERATOR = module.GENERATOR, module.ColoredMNIST(replace(module.CMNIST, valid_size=300))
    try:
        src = write_mnist(c.tmp / "src5", synthetic_mnist(1500, 300))
        generate("cmnist", [Decimal("0.05")], c.tmp / "other", 0, src, allow_unverified=True)
    finally:
        module.GENERATOR = keep
    shutil.rmtree(c.ds / "data" / "1pct")
    shutil.copytree(c.tmp / "other" / "cmnist" / "data" / "5pct", c.ds / "data" / "1pct")
    meta = c.unit()
    meta["unit"] = "1pct"
    c.write_unit(meta)


# -- checkpoints: a real checkpoint of another run, copied under this run's id

def _checkpoint_of(c: Ctx, method: str = "erm", seed: int = 41, steps: int = 2, strip: str | None = None,
                   digest: str | None = None) -> None:
    from biasbench.baselines import configure, get as get_method
    from biasbench.dataset_format.folder import DatasetFolder
    from biasbench.runner import load_run_data
    from biasbench.training.trainer import train

    folder = DatasetFolder(c.ds, "cmnist")
    data, fp = load_run_data(folder, Decimal("0.01"))
    cfg = configure(method, "cmnist", Decimal("0.01"), seed, "cpu", len(data.train), steps=steps, eval_every=2)
    scratch = c.tmp / "scratch" / f"{cfg.run_id(fp)}.pt"
    train(cfg, data, get_method(method), torch.device("cpu"), scratch)
    state = torch.load(scratch, weights_only=True)
    if strip:
        state.pop(strip)
    if digest:
        state["identity"]["config_digest"] = digest
    path = c.results() / "checkpoints" / f"{run_id(c)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    shutil.rmtree(c.tmp / "scratch")


def set_aside_and_redone(c: Ctx) -> None:
    record = json.loads((c.results() / "runs" / f"{run_id(c)}.json").read_text())
    assert [e["step"] for e in record["history"]] == [2] and record["seed"] == 41 and record["method"] == "erm"
    assert (c.results() / "checkpoints" / f"{run_id(c)}.pt.foreign-1").is_file()  # set aside, not deleted


def own_checkpoint(c: Ctx) -> None:
    _checkpoint_of(c)
    path = c.results() / "checkpoints" / f"{run_id(c)}.pt"
    state = torch.load(path, weights_only=True)
    assert state["identity"]["run_id"] == run_id(c)


# -- records

def _write_records(c: Ctx, records: list[dict]) -> None:
    runs = c.results() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (runs / f"r{i}-{r['run_id']}.json").write_text(json.dumps(r, allow_nan=True))


def _good(seed: int = 41, acc: float = 70.0, fp: str = "f" * 64, method: str = "erm", **kw) -> dict:
    from helpers import record

    r = record(method, "cmnist", "1pct", seed, acc, **kw)
    r["data"]["fingerprint"] = fp
    r["run_id"] += f"{seed}-{fp[:4]}"
    r["config"]["steps"] = 10
    r["config"]["protocol"]["selection_metric"] = "unbiased"
    r["history"] = [r["best_valid"]]
    return r


def records_with(*edits: Callable[[dict], None]):
    def setup(c: Ctx) -> None:
        bad = _good(43, 10.0)
        for edit in edits:
            edit(bad)
        _write_records(c, [_good(41, 70.0), _good(42, 72.0), bad])
    return setup


def _set(path: str, value):
    def edit(r: dict) -> None:
        *head, last = path.split(".")
        target = r
        for k in head:
            target = target[k]
        target[last] = value
    return edit


def records_two_datasets(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0, "a" * 64), _good(42, 72.0, "a" * 64), _good(43, 10.0, "b" * 64)])


def records_same_seed_two_datasets(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0, "a" * 64), _good(42, 72.0, "a" * 64), _good(41, 10.0, "b" * 64)])


def records_nan(c: Ctx) -> None:
    bad = _good(43, 10.0)
    for entry in (bad["best_valid"], bad["history"][0]):
        entry["test"]["unbiased"] = float("nan")
    _write_records(c, [_good(41, 70.0), _good(42, 72.0), bad])


def records_deep(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0), _good(42, 72.0)])
    (c.results() / "runs" / "deep.json").write_text("[" * 200000 + "]" * 200000)


def records_fifo(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0), _good(42, 72.0)])
    os.mkfifo(c.results() / "runs" / "pipe.json")


def records_symlink(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0), _good(42, 72.0)])
    (c.outside / "r.json").write_text(json.dumps(_good(43, 10.0)))
    (c.results() / "runs" / "link.json").symlink_to(c.outside / "r.json")


def n_seeds_two(c: Ctx) -> None:
    import pandas as pd

    table = pd.read_csv(c.out / "leaderboard.csv")
    assert list(table["n_seeds"]) == [2] and table["test_unbiased_mean"].iloc[0] == pytest.approx(71.0)


def budget_two_seeds(c: Ctx) -> None:
    import pandas as pd

    table = pd.read_csv(c.out / "budget.csv")
    assert list(table["n_seeds"]) == [2] and table["test_unbiased_mean"].iloc[0] == pytest.approx(71.0)


def committed_leaderboard(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0), _good(42, 72.0)])
    assert main(["leaderboard", "--results", str(c.results()), "--out", str(c.out)]) == 0


def committed_leaderboard_then_fewer(c: Ctx) -> None:
    committed_leaderboard(c)
    other = _good(41, 70.0, method="reweighted_erm")
    shutil.rmtree(c.results())
    _write_records(c, [other])


def committed_report(c: Ctx) -> None:
    _write_records(c, [_good(41, 70.0), _good(42, 72.0)])
    assert main(["report", "--results", str(c.results()), "--out", str(c.out / "REPRODUCTION.md")]) == 0


def empty_runs(c: Ctx) -> None:
    shutil.rmtree(c.results() / "runs")
    (c.results() / "runs").mkdir()


def lb(c: Ctx, *extra: str) -> list[str]:
    return ["leaderboard", "--results", str(c.results()), "--out", str(c.out), *extra]


def report(c: Ctx, results: str | None = None, *extra: str) -> list[str]:
    return ["report", "--results", results or str(c.results()), "--out", str(c.out / "REPRODUCTION.md"), *extra]


def budget_args(c: Ctx, *extra: str) -> list[str]:
    return ["budget", "--results", str(c.results()), "--methods", "erm", "--budgets", "10", "--out", str(c.out),
            *extra]


# -- the machine's limits

def no_space(target: str):
    def setup(c: Ctx) -> None:
        c.notes["enospc"] = target
    return setup


def nothing_half_written(c: Ctx) -> None:
    leftovers = [p for p in c.tmp.rglob(".tmp-*")]
    assert not leftovers, leftovers
    assert not (c.out / "cmnist" / "data").exists()


@dataclass
class Row2:
    id: str
    setup: Callable[[Ctx], None]
    args: Callable[[Ctx], list[str]]
    code: int
    fragment: str  # in the one stderr line (or in stdout where `lines` is 0)
    lines: int = 1  # lines on stderr: exactly this many
    check: Callable[[Ctx], None] | None = None
    may_change: tuple[str, ...] = ()  # globs (relative to the row's folder) a row may rewrite or move


def run_args(c: Ctx, *extra: str, method: str = "erm") -> list[str]:
    return ["run", "--method", method, *RUN, *data(c), "--results", str(c.results()), *extra]


EXPORT = lambda fmt: (lambda c: ["export", "cmnist", "--format", fmt, "--out", str(c.out), *data(c)])  # noqa: E731
PUBLISH = lambda c: ["publish", "cmnist", "--dry-run", str(c.out), *data(c)]  # noqa: E731
PREVIEW = lambda c: ["preview", "cmnist", "--ratio", "1pct", "--out", str(c.out / "p.png"), *data(c)]  # noqa: E731
VERIFY = lambda c: ["verify", str(c.ds)]  # noqa: E731
RUN_ = lambda c: run_args(c)  # noqa: E731
READERS = {"export-disent": EXPORT("disent"), "export-lff": EXPORT("lff"), "publish": PUBLISH, "preview": PREVIEW,
           "run": RUN_}
TRAVERSAL = "../../../outside/important"

ROWS2 = [
    # 1. metadata used as a path: one checked helper (safe_paths.plain_name / fingerprint / no_symlink_below)
    *[Row2(f"fingerprint-traversal-{k}", fingerprint_set(TRAVERSAL), f, 2, "not 64 hex digits")
      for k, f in {**READERS, "verify": VERIFY}.items()],
    Row2("fingerprint-absolute-run", fingerprint_set("/tmp/victim"), RUN_, 2, "not 64 hex digits"),
    Row2("fingerprint-uppercase-run", fingerprint_set("A" * 64), RUN_, 2, "not 64 hex digits"),
    Row2("fingerprint-number-export", fingerprint_set(12), EXPORT("disent"), 2, "not 64 hex digits"),
    Row2("cache-dir-symlink-run", cache_symlink(".cache"), RUN_, 2, "symbolic link"),
    Row2("cache-tensors-symlink-run", cache_symlink("tensors"), RUN_, 2, "symbolic link"),
    Row2("data-dir-symlink-verify", data_symlink, VERIFY, 2, "symbolic link"),
    Row2("data-dir-symlink-run", data_symlink, RUN_, 2, "symbolic link"),
    *[Row2(f"budget-name-{k}", nothing, lambda c, n=n: budget_args(c, "--name", n), 2, "not a plain file name")
      for k, n in {"dotdot": "../../ESCAPED", "absolute": "/tmp/ESCAPED", "hidden": ".hidden", "newline": "a\nb",
                   "slash": "a/b"}.items()],
    *[Row2(f"leaderboard-name-{k}", nothing, lambda c, n=n: lb(c, "--name", n), 2, "not a plain file name")
      for k, n in {"dotdot": "../../ESCAPED", "absolute": "/tmp/ESCAPED", "hidden": ".x"}.items()],
    Row2("lff-tag-traversal-export", params_set("severity", "4/../../../../outside/escaped"), EXPORT("lff"), 2,
         "not a plain file name"),
    Row2("lff-tag-list-export", params_set("severity", [4]), EXPORT("lff"), 2, "not a plain file name"),
    # 2. content served without checking it: one verified reader (dataset_format/read.py: read_config)
    *[Row2(f"labels-edited-{k}", labels_edited, f, 2, "does not match its recorded fingerprint")
      for k, f in READERS.items()],
    Row2("shard-reencoded-export", shard_reencoded, EXPORT("disent"), 2, "not the shard its manifest vouches for"),
    Row2("labels-edited-verify", labels_edited, VERIFY, 1, "MISMATCH", lines=0),
    *[Row2(f"forged-label-10-{k}", forged("label", 10), f, 2, "outside 0..9") for k, f in READERS.items()],
    Row2("forged-label-minus-1-run", forged("label", -1), RUN_, 2, "outside 0..9"),
    Row2("forged-bias-12-export", forged("bias_label", 12), EXPORT("disent"), 2, "outside 0..9"),
    Row2("forged-bias-12-preview", forged("bias_label", 12), PREVIEW, 2, "outside 0..9"),
    Row2("forged-valid-label-run", forged("label", 10, "common", "valid"), RUN_, 2, "outside 0..9"),
    Row2("unit-edited-not-manifest-run", unit_edited_not_manifest, RUN_, 2, "manifest.json vouches for"),
    Row2("unit-edited-not-manifest-export", unit_edited_not_manifest, EXPORT("lff"), 2, "manifest.json vouches for"),
    Row2("manifest-missing-run", manifest_gone, RUN_, 2, "missing or unreadable"),
    Row2("manifest-garbage-preview", manifest_garbage, PREVIEW, 2, "missing or unreadable"),
    Row2("manifest-other-fingerprint-export", manifest_other_fingerprint, EXPORT("disent"), 2,
         "not the content manifest.json vouches for"),
    Row2("card-train-is-test-verify", card_points_train_at_test, VERIFY, 1, "data_files for 1pct differ", lines=0),
    Row2("5pct-as-1pct-run", five_pct_as_one_pct, RUN_, 2, "built for ratio '0.05'"),
    Row2("5pct-as-1pct-verify", five_pct_as_one_pct, VERIFY, 2, "built for ratio '0.05'"),
    Row2("5pct-as-1pct-publish", five_pct_as_one_pct, PUBLISH, 2, "built for ratio '0.05'"),
    # 3. checkpoints carry their identity; a foreign one is set aside and the run starts over
    Row2("checkpoint-other-seed", lambda c: _checkpoint_of(c, seed=42), RUN_, 0, "set aside",
         check=set_aside_and_redone, may_change=("results/checkpoints/*",)),
    Row2("checkpoint-other-method", lambda c: _checkpoint_of(c, method="reweighted_erm"), RUN_, 0, "set aside",
         check=set_aside_and_redone, may_change=("results/checkpoints/*",)),
    Row2("checkpoint-longer-run", lambda c: _checkpoint_of(c, steps=4), RUN_, 0, "set aside",
         check=set_aside_and_redone, may_change=("results/checkpoints/*",)),
    Row2("checkpoint-without-identity", lambda c: _checkpoint_of(c, seed=42, strip="identity"), RUN_, 0,
         "carries no run identity", check=set_aside_and_redone, may_change=("results/checkpoints/*",)),
    Row2("checkpoint-other-config-digest", lambda c: _checkpoint_of(c, digest="0" * 64), RUN_, 0,
         "another config", check=set_aside_and_redone, may_change=("results/checkpoints/*",)),
    Row2("checkpoint-own-resumes", lambda c: _checkpoint_of(c), RUN_, 0, "resuming", lines=0,
         may_change=("results/checkpoints/*",)),
    # 4. one record validator (results/records.py) for leaderboard, report, budget, density readers
    Row2("records-two-datasets", records_two_datasets, lb, 0, "never mixes datasets", check=n_seeds_two),
    Row2("records-same-seed-two-datasets", records_same_seed_two_datasets, lb, 0, "never mixes datasets",
         check=n_seeds_two),
    Row2("records-nan-metric", records_nan, lb, 0, "is NaN", check=n_seeds_two),
    *[Row2(f"record-{k}-leaderboard", records_with(_set(path, v)), lb, 0, needle, check=n_seeds_two)
      for k, path, v, needle in [
          ("ratio-int", "ratio", 5, "ratio is 5"), ("seed-list", "seed", [1, 2], "seed is [1, 2]"),
          ("method-list", "method", ["erm"], "method is ['erm']"), ("density-text", "config.density", "0.1",
                                                                     "config.density is '0.1'"),
          ("variant-int", "variant", 3, "variant is 3"), ("history-dict", "history", {"a": 1}, "history is not"),
          ("metric-text", "best_valid.test.unbiased", "high", "not a number"),
          ("protocol-missing", "config.protocol", None, "headline is missing"),
          ("seed-bool", "seed", True, "seed is True"), ("fingerprint-int", "data.fingerprint", 7, "fingerprint")]],
    Row2("record-deeply-nested", records_deep, lb, 0, "not valid JSON", check=n_seeds_two),
    Row2("record-fifo-leaderboard", records_fifo, lb, 0, "not a regular file", check=n_seeds_two),
    Row2("record-symlink-leaderboard", records_symlink, lb, 0, "not a regular file", check=n_seeds_two),
    Row2("record-fifo-report", records_fifo, lambda c: report(c), 0, "not a regular file"),
    Row2("record-seed-list-report", records_with(_set("seed", [1, 2])), lambda c: report(c), 0, "seed is [1, 2]"),
    Row2("record-fifo-budget", records_fifo, budget_args, 0, "not a regular file"),
    Row2("record-ratio-int-budget", records_with(_set("ratio", 5)), budget_args, 0, "ratio is 5"),
    Row2("records-two-datasets-budget", records_two_datasets, budget_args, 0, "never mixes datasets"),
    Row2("records-nan-metric-budget", records_nan, budget_args, 0, "is NaN", check=budget_two_seeds),
    Row2("leaderboard-typo-results", committed_leaderboard, lambda c: lb(c)[:2] + [str(c.tmp / "TYPO")] + lb(c)[3:],
         2, "holds no runs/ folder"),
    Row2("leaderboard-empty-runs", lambda c: (committed_leaderboard(c), empty_runs(c)), lb, 2, "refusing to replace"),
    Row2("leaderboard-fewer-rows", committed_leaderboard_then_fewer, lb, 2, "refusing to replace"),
    Row2("report-typo-results", committed_report, lambda c: report(c, str(c.tmp / "TYPO")), 2,
         "holds no runs/ folder"),
    Row2("report-empty-runs", lambda c: (committed_report(c), empty_runs(c)), lambda c: report(c), 2,
         "refusing to replace"),
    # 5. the machine's limits: a full disk is one line and leaves what was there
    Row2("enospc-generate", no_space("generate"),
         lambda c: ["generate", "cmnist", "--ratio", "1pct", "--allow-unverified", "--source-dir",
                    str(write_mnist(c.tmp / "src", synthetic_mnist(7000, 1000))), "--out", str(c.out)], 2,
         "no space left", check=nothing_half_written),
    Row2("enospc-run-record", no_space("record"), RUN_, 2, "no space left", check=nothing_half_written),
    Row2("enospc-export", no_space("export"), EXPORT("disent"), 2, "no space left", check=nothing_half_written),
    Row2("enospc-publish", no_space("publish"), PUBLISH, 2, "no space left"),
    # 6. odd options: refused up front, one line
    *[Row2(f"beta-{k}", nothing, lambda c, v=v: run_args(c, "--beta", v, method="reweighted_erm"), 2, "--beta")
      for k, v in {"inf": "inf", "nan": "nan", "negative": "-1", "zero": "0"}.items()],
    Row2("beta-on-erm", nothing, lambda c: run_args(c, "--beta", "2"), 2, "erm has no beta"),
    Row2("beta-on-erm-sweep", nothing, lambda c: ["sweep", "--methods", "erm", "lff", "--beta", "2", "--dry-run",
                                                  *data(c), "--results", str(c.results())], 2, "has a beta"),
    *[Row2(f"device-{d.replace(':', '')}", nothing, lambda c, d=d: [*run_args(c), "--device", d], 2, "--device")
      for d in ("mps", "meta", "cpu:3", "xla", "cuda:99")],
    Row2("device-mps-sweep", nothing, lambda c: ["sweep", "--methods", "erm", "--device", "mps", "--dry-run", *data(c),
                                                 "--results", str(c.results())], 2, "cpu or cuda only"),
    Row2("eval-every-over-steps", nothing, lambda c: ["run", "--method", "erm", "--profile", "cpu", "--device", "cpu",
                                                      "--ratio", "1pct", "--seeds", "1", "--steps", "20",
                                                      "--eval-every", "1000", *data(c)], 2, "more than the run's 20"),
    Row2("eval-every-over-steps-sweep", nothing,
         lambda c: ["sweep", "--methods", "erm", "--ratios", "1pct", "--seeds", "1", "--steps", "20", "--eval-every",
                    "1000", "--device", "cpu", "--dry-run", *data(c), "--results", str(c.results())], 2,
         "more than the run's 20"),
]


def _fill_disk(monkeypatch, target: str) -> None:
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere")

    if target == "generate":
        from biasbench.dataset_format import parquet
        monkeypatch.setattr(parquet, "write_split", full)
    elif target == "record":
        from biasbench.results import store
        monkeypatch.setattr(store.atomic, "write_text", full)
    elif target == "export":
        import biasbench.export as export
        monkeypatch.setattr(export, "_write_files", full)
    elif target == "publish":
        from biasbench.hub import publish
        monkeypatch.setattr(publish, "_place", full)


def _snapshot(path: Path) -> dict[str, str]:
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_symlink() or not p.is_file() or p.name == ".lock" or ".cache" in p.parts:
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("row", ROWS2, ids=[r.id for r in ROWS2])
def test_hostile_round_two(row: Row2, small_cmnist, tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(small_cmnist, root, symlinks=True, ignore=shutil.ignore_patterns(".cache"))  # as generated
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    (outside / "important.npz").write_bytes(b"precious")
    c = Ctx(tmp_path, root, outside, tmp_path / "out")
    row.setup(c)
    if "enospc" in c.notes:
        _fill_disk(monkeypatch, c.notes["enospc"])
    capsys.readouterr()
    before, outside_before = _snapshot(tmp_path), tree_digest(outside)
    try:
        code = main(row.args(c))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == row.code, (out[-800:], err[-800:])
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == row.lines, err
    assert row.fragment in (lines[0] if row.lines else out), (lines, out[-800:])
    assert tree_digest(outside) == outside_before  # nothing outside changed
    after = _snapshot(tmp_path)
    import fnmatch

    changed = [k for k, v in before.items() if after.get(k) != v
               and not any(fnmatch.fnmatch(k, g) for g in row.may_change)]
    assert not changed, changed  # nothing that was there is lost or rewritten
    if row.check is not None:
        row.check(c)


def test_the_second_table_is_large_enough():
    assert len(ROWS2) >= 60 and len({r.id for r in ROWS2}) == len(ROWS2)


@pytest.mark.parametrize("command", ["run", "leaderboard", "report"])
def test_an_ascii_console_gets_ascii_not_a_crash(command, small_cmnist, tmp_path, monkeypatch):
    import io

    root = tmp_path / "data"
    shutil.copytree(small_cmnist, root, ignore=shutil.ignore_patterns(".cache"))
    c = Ctx(tmp_path, root, tmp_path / "outside", tmp_path / "out")
    _write_records(c, [_good(41, 70.0), _good(42, 72.0)])
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="ascii"))
    args = {"run": lambda: ["run", "--method", "erm", *RUN, "--data-dir", str(root), "--results",
                            str(tmp_path / "fresh")],
            "leaderboard": lambda: lb(c), "report": lambda: report(c)}[command]()
    assert main(args) == 0
    sys.stdout.flush()
    text = buffer.getvalue().decode("ascii")  # all of it ascii
    assert "wrote" in text or "records in" in text
    if command != "report":  # report prints only its counts; the others print mean +- std
        assert "+-" in text
