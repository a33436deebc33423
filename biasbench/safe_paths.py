"""Names read from metadata (unit.json, manifests, cards, release folders) may not leave their folder.

A dataset folder is input: it can come from anyone (a Hub repo, a tarball).
Every file name derived from its metadata must be a plain name or a
relative path of plain parts, and what it names must be a regular file (or
folder) inside the folder it belongs to, reached without a symbolic link.
"""

from __future__ import annotations

import re
from pathlib import Path

from biasbench.errors import UserError

# Letters, digits, '.', '_', '-', '+', '=' (no separators, no control characters, no leading dot).
_PLAIN = re.compile(r"^[A-Za-z0-9_+=-][A-Za-z0-9._+=-]*$")


def is_plain_name(name: object) -> bool:
    """One path component we would have written ourselves: no '/', '..', control characters, leading dot."""
    return isinstance(name, str) and name not in (".", "..") and bool(_PLAIN.fullmatch(name))


def check_relative(rel: object, what: str) -> str:
    """`rel` ('data/1pct/train-0.parquet') as a relative path of plain parts, or a one-line UserError."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        raise UserError(f"{what} names {rel!r}, not a relative path inside its folder; refusing it")
    if not all(is_plain_name(part) for part in rel.split("/")):
        raise UserError(f"{what} names {rel!r}, which leaves its folder or is not a plain file name; refusing it")
    return rel


def inside(root: Path, rel: str, what: str, must_exist: bool = False) -> Path:
    """root / rel, checked to stay inside `root` with no symbolic link on the way."""
    check_relative(rel, what)
    path = Path(root) / rel
    current = Path(root)
    for part in rel.split("/"):
        current = current / part
        if current.is_symlink():
            raise UserError(f"{what}: {current} is a symbolic link; a dataset folder holds none, refusing it")
    if must_exist and not path.exists():
        raise UserError(f"{what}: {path} is missing")
    return path


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def plain_name(name: object, what: str) -> str:
    """`name` as one plain path component (a file name stem from the command line, a record, a card), or a
    one-line UserError: the one check every name read from outside goes through before it reaches a path."""
    if not is_plain_name(name):
        raise UserError(f"{what} {name!r} is not a plain file name (letters, digits, '.', '_', '-', '+', '=', "
                        "no '/', '..' or leading dot); refusing it")
    return str(name)


def child(folder: Path, name: object, what: str, suffix: str = "") -> Path:
    """folder / (name + suffix), `name` checked as a plain name, the result not a symbolic link."""
    path = Path(folder) / (plain_name(name, what) + suffix)
    if path.is_symlink():
        raise UserError(f"{what}: {path} is a symbolic link; refusing to follow it")
    return path


def no_symlink_below(root: Path, path: Path) -> bool:
    """True when no component of `path` below `root` (the folder the user named) is a symbolic link."""
    root, path = Path(root), Path(path)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return False
    return True


def fingerprint(value: object, what: str) -> str:
    """A content fingerprint as biasbench writes it (64 lowercase hex digits): it names cache files."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise UserError(f"{what} has fingerprint {value!r}, not 64 hex digits; refusing it "
                        "(regenerate the dataset with --force)")
    return value
