"""Writes that are either complete or absent, never half done.

Everything biasbench persists goes through here: write to a temporary name
in the same directory, flush to disk, rename into place. A process killed at
any instant leaves the old file (or nothing), plus at worst a `.tmp-*` entry
that the next run removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk: the old file stays, no temporary is left beside it
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_if_changed(path: Path, text: str) -> bool:
    """Atomic write unless the file already holds exactly `text`."""
    path = Path(path)
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes(path, data)
    return True


def fsync_tree(path: Path) -> None:
    for dirpath, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def temp_dir(parent: Path, name: str) -> Path:
    """A fresh temporary directory beside its final location."""
    tmp = Path(parent) / f"{TMP_PREFIX}{name}.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


@contextlib.contextmanager
def building(parent: Path, name: str) -> Iterator[Path]:
    """A temporary directory beside its final place, removed if the block fails (a full disk, a damaged
    input): a failed write leaves nothing half-built behind, and what was in place before stays."""
    tmp = temp_dir(parent, name)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_unless_emptier(path: Path, data: bytes, lost: list[str], force: bool, hint: str) -> None:
    """Write `path` atomically, unless that would drop what `lost` names (rows the old file has and the new one
    lacks) and `force` is off: an empty or mistyped input never silently replaces a committed result."""
    refuse_if_losing(path, lost, force, hint)
    write_bytes(path, data)


def refuse_if_losing(path: Path, lost: list[str], force: bool, hint: str) -> None:
    """A one-line UserError when replacing `path` would drop `lost` and `force` is off."""
    from biasbench.errors import UserError

    if lost and not force:
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        raise UserError(f"refusing to replace {path}: it would lose {lost[0]}{more} ({hint}); "
                        "check the input, or pass --force to replace it")


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a finished temporary directory into place, replacing any old one.

    The old directory is first renamed aside, so at every instant `final`
    is either the complete old version, absent, or the complete new one.
    """
    tmp, final = Path(tmp), Path(final)
    fsync_tree(tmp)
    trash = None
    if final.exists():
        trash = final.with_name(f"{TMP_PREFIX}old-{final.name}.{os.getpid()}")
        os.replace(final, trash)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def check_writable(directory: Path) -> None:
    """Create `directory` if needed and prove a file can be written in it (raises OSError)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f"{TMP_PREFIX}write-test.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink(missing_ok=True)  # a concurrent run holding the lock may have swept it as a leftover


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete `.tmp-*` leftovers of killed runs (call while holding the lock)."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for entry in sorted(directory.rglob(f"{TMP_PREFIX}*")):
        if not entry.exists():  # inside a leftover removed just before
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on `path` (created if needed) for one writer at a time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
