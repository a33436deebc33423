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
