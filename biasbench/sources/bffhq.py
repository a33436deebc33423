"""BFFHQ sources: the released BFFHQ folder, or FFHQ images plus a per-image label table.

Both readers only look at names and labels and hash files; pixels are read
later by the generator's workers. Every problem a user can cause (missing
folder, a file name that does not parse, a label table without a needed
column, an id without an image) is a UserError naming the file.

Release layout (BiaSwap/DisEnt, PROTOCOL.md): `0.5pct/align/<age>/`,
`0.5pct/conflict/<age>/`, `valid/`, `test/`, files `<id>_<age>_<gender>.png`.
FFHQ layout: any folder tree holding `<number>.png` (or .jpg) files, e.g.
FFHQ's `thumbnails128x128/00000/00000.png`, with exactly one label CSV at
its top level (FFHQ-Aging's `ffhq_aging_labels.csv`, or any CSV with an
image id, an age or age group, and a gender).
"""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasbench.digest import sha256_file
from biasbench.errors import UserError
from biasbench.protocol import BFFHQ, BFFHQProtocol
from biasbench.sources.common import SourceFile, env_source_dir, md5_hex, sha256_hex

RELEASE_NAME = re.compile(r"^(\d+)_([01])_([01])\.png\Z")  # \Z: a name ending in a newline does not match
FFHQ_NAME = re.compile(r"^(\d+)\.(png|jpe?g)$", re.IGNORECASE)
RELEASE_FOLDERS = ("0.5pct/align", "0.5pct/conflict", "valid", "test")
ID_COLUMNS = ("image_number", "image_id", "id")
AGE_COLUMNS = ("age_group", "age")
GENDERS = {"female": 0, "f": 0, "woman": 0, "male": 1, "m": 1, "man": 1}


@dataclass(frozen=True)
class Images:
    """A set of labelled source images, sorted by id."""

    ids: np.ndarray  # int64
    age: np.ndarray  # 0 young, 1 old
    gender: np.ndarray  # 0 female, 1 male
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class BFFHQRelease:
    root: Path
    splits: dict[str, Images]  # train (0.5pct align + conflict), valid, test
    counts: dict[str, int]  # per release folder
    files: tuple[SourceFile, ...]  # one per release folder: digest of its sha256 listing
    kind: str = "release"


@dataclass(frozen=True)
class FFHQSource:
    root: Path
    images: Images  # young/old rows with an image, sorted by id
    table: dict  # label-table facts for the card: file, columns used, row counts
    files: tuple[SourceFile, ...]  # the CSV, and a digest of the images' sha256 listing
    kind: str = "ffhq"


def listing_file(name: str, entries: list[tuple[str, str]], verified: bool) -> SourceFile:
    """A folder as one source entry: sha256 of its `sha256sum`-style listing ("<sha256>  <name>\\n", C-sorted).

    `(cd ROOT && find FOLDER -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum` recomputes it.
    """
    paths = [p for p, _ in entries]
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL
        digests = list(pool.map(sha256_file, paths))
    text = "".join(f"{d}  {label}\n" for d, (_, label) in sorted(zip(digests, entries), key=lambda t: t[1][1].encode()))
    data = text.encode()
    return SourceFile(name, name, md5_hex(data), sha256_hex(data), verified)


def _files_under(folder: Path) -> list[Path]:
    """Visible files at any depth (hidden files are skipped, as the reference loaders' glob does).

    A release is input: a symbolic link in it (to a file or a folder, inside or outside the release) is
    refused, so an image from elsewhere can never be taken into a split.
    """
    out = []
    if folder.is_symlink():
        raise UserError(f"{folder} is a symbolic link; the release folders must be real folders")
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            if (Path(dirpath) / name).is_symlink():
                raise UserError(f"{Path(dirpath) / name} is a symbolic link; a release holds only real files")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def _parse_release_folder(root: Path, folder: str) -> tuple[list[tuple[int, int, int, str]], list[tuple[str, str]]]:
    base = root / folder
    rows, entries = [], []
    for path in _files_under(base):
        m = RELEASE_NAME.match(path.name)
        if m is None:
            shown = str(path) if str(path).isprintable() else repr(str(path))
            raise UserError(f"{shown}: file name does not parse as <id>_<age>_<gender>.png (age and gender 0 or 1); "
                            "is this the BFFHQ release?")
        image_id, age, gender = int(m[1]), int(m[2]), int(m[3])
        rel = path.relative_to(base)
        if folder.startswith("0.5pct/"):
            if len(rel.parts) != 2 or rel.parts[0] != str(age):
                raise UserError(f"{path}: age {age} in the name but stored under {folder}/{rel.parts[0]}/ "
                                "(expected the age class folder)")
            if (folder.endswith("align")) != (age == gender):
                kind = "bias-aligned" if age == gender else "bias-conflicting"
                raise UserError(f"{path}: a {kind} image (age {age}, gender {gender}) in {folder}/")
        rows.append((image_id, age, gender, str(path)))
        entries.append((str(path), str(path.relative_to(root))))
    return rows, entries


def _images(rows: list[tuple[int, int, int, str]], where: str) -> Images:
    rows = sorted(rows)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    dup = ids[1:][ids[1:] == ids[:-1]]
    if len(dup):
        raise UserError(f"{where}: image id {dup[0]} appears more than once")
    return Images(ids, np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64),
                  tuple(r[3] for r in rows))


def is_release(root: Path) -> bool:
    return (Path(root) / "0.5pct").is_dir()


def load_release(root: Path, allow_unverified: bool = False, proto: BFFHQProtocol = BFFHQ) -> BFFHQRelease:
    """Read and check the released BFFHQ folder (names, class folders, counts; sha256 of every file)."""
    root = Path(root)
    missing = [f for f in RELEASE_FOLDERS if not (root / f).is_dir()]
    if missing:
        raise UserError(f"{root} is not a BFFHQ release: {', '.join(missing)} missing "
                        "(expected 0.5pct/align/, 0.5pct/conflict/, valid/, test/)")
    parsed = {f: _parse_release_folder(root, f) for f in RELEASE_FOLDERS}
    counts = {f: len(parsed[f][0]) for f in RELEASE_FOLDERS}
    expected = dict(proto.release_counts)
    differ = [f"{f}: {counts[f]} (release: {expected[f]})" for f in RELEASE_FOLDERS if counts[f] != expected.get(f)]
    if differ and not allow_unverified:
        raise UserError(f"{root} does not have the release's file counts ({'; '.join(differ)}); pass "
                        "--allow-unverified to ingest it anyway (the card will say so)")
    files = tuple(listing_file(f, parsed[f][1], not differ) for f in RELEASE_FOLDERS)
    splits = {
        "train": _images(parsed["0.5pct/align"][0] + parsed["0.5pct/conflict"][0], f"{root}/0.5pct"),
        "valid": _images(parsed["valid"][0], f"{root}/valid"),
        "test": _images(parsed["test"][0], f"{root}/test"),
    }
    return BFFHQRelease(root, splits, counts, files)


def _pick(columns: list[str], choices: tuple[str, ...], what: str, path: Path) -> str:
    lower = {c.strip().lower(): c for c in columns}
    for name in choices:
        if name in lower:
            return lower[name]
    raise UserError(f"label table {path} has no {what} column (one of: {', '.join(choices)}); "
                    f"its columns: {', '.join(columns) or 'none'}")


def _age_class(value: str, column: str, proto: BFFHQProtocol, where: str) -> int:
    """0 young, 1 old, -1 neither."""
    text = value.strip()
    if column == "age_group":
        if not re.fullmatch(r"\d+-\d+", text):
            raise UserError(f"{where}: age group {value!r} is not like '20-29'")
        return 0 if text in proto.young_groups else 1 if text in proto.old_groups else -1
    try:
        age = float(text)
    except ValueError:
        raise UserError(f"{where}: age {value!r} is not a number") from None
    if age != age:  # nan: no age known, the row is not used
        return -1
    (ylo, yhi), (olo, ohi) = proto.young_ages, proto.old_ages
    return 0 if ylo <= age < yhi + 1 else 1 if olo <= age < ohi + 1 else -1


def read_label_table(path: Path, proto: BFFHQProtocol = BFFHQ) -> tuple[dict[int, tuple[int, int]], dict]:
    """id -> (age class, gender) for young/old rows, and facts about the table."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            id_col = _pick(columns, ID_COLUMNS, "image id", path)
            age_col = _pick(columns, AGE_COLUMNS, "age or age group", path)
            gender_col = _pick(columns, ("gender",), "gender", path)
            kind = age_col.strip().lower()
            labels: dict[int, tuple[int, int]] = {}
            seen: set[int] = set()
            rows = 0
            for line, row in enumerate(reader, start=2):
                rows += 1
                where = f"{path}:{line}"
                raw_id = (row.get(id_col) or "").strip()
                stem = raw_id.rsplit(".", 1)[0] if raw_id.lower().endswith((".png", ".jpg", ".jpeg")) else raw_id
                if not stem.isdigit():
                    raise UserError(f"{where}: image id {raw_id!r} is not an FFHQ image number")
                image_id = int(stem)
                if image_id in seen:
                    raise UserError(f"{where}: image id {image_id} is listed twice")
                seen.add(image_id)
                gender = GENDERS.get((row.get(gender_col) or "").strip().lower())
                if gender is None:
                    raise UserError(f"{where}: gender {row.get(gender_col)!r} is not female or male")
                age = _age_class(row.get(age_col) or "", kind, proto, where)
                if age >= 0:
                    labels[image_id] = (age, gender)
    except OSError as exc:
        raise UserError(f"cannot read label table {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise UserError(f"{path} is not a readable CSV ({exc})") from None
    if rows and not labels:
        raise UserError(f"{path}: none of its {rows} rows has an age in the young ({proto.young_ages[0]}-"
                        f"{proto.young_ages[1]}) or old ({proto.old_ages[0]}-{proto.old_ages[1]}) range "
                        f"(column {age_col!r}; empty or nan ages?)")
    facts = {"file": path.name, "rows": rows, "used": len(labels),
             "columns": {"id": id_col, "age": age_col, "gender": gender_col}}
    return labels, facts


def _find_table(root: Path) -> Path:
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not tables:
        raise UserError(f"{root} is neither a BFFHQ release (no 0.5pct/) nor an FFHQ folder with a label CSV "
                        "(e.g. ffhq_aging_labels.csv) at its top level")
    if len(tables) > 1:
        raise UserError(f"{root} holds several CSV files ({', '.join(p.name for p in tables)}); keep one label table")
    return tables[0]


def load_ffhq(root: Path, proto: BFFHQProtocol = BFFHQ) -> FFHQSource:
    """Label table + images: every young/old id of the table must have exactly one image file."""
    root = Path(root)
    table_path = _find_table(root)
    labels, facts = read_label_table(table_path, proto)
    found: dict[int, str] = {}
    for path in _files_under(root):
        m = FFHQ_NAME.match(path.name)
        if m is None:
            continue
        image_id = int(m[1])
        if image_id in labels and image_id in found:
            raise UserError(f"image {image_id} found twice ({found[image_id]}, {path}); point --source-dir at a "
                            "folder with one resolution of FFHQ and the label CSV")
        found[image_id] = str(path)
    missing = sorted(i for i in labels if i not in found)
    if missing:
        shown = ", ".join(f"{i:05d}" for i in missing[:5])
        raise UserError(f"{len(missing)} image id(s) of {table_path.name} have no image file under {root} "
                        f"(first: {shown})")
    ids = sorted(labels)
    images = Images(np.array(ids, dtype=np.int64), np.array([labels[i][0] for i in ids], dtype=np.int64),
                    np.array([labels[i][1] for i in ids], dtype=np.int64), tuple(found[i] for i in ids))
    data = table_path.read_bytes()
    table_file = SourceFile(table_path.name, str(table_path), md5_hex(data), sha256_hex(data), False)
    image_file = listing_file("images", [(found[i], f"{i:05d}") for i in ids], False)
    groups = np.bincount(images.age * 2 + images.gender, minlength=4).tolist()
    facts["groups"] = dict(zip(("young_female", "young_male", "old_female", "old_male"), groups))
    return FFHQSource(root, images, facts, (table_file, image_file))


def resolve_bffhq(source_dir: Path | None, allow_unverified: bool = False, proto: BFFHQProtocol = BFFHQ):
    """--source-dir (else $BIASBENCH_SOURCES): a BFFHQ release or an FFHQ folder with a label CSV. No download."""
    chosen = source_dir or env_source_dir()
    if chosen is None:
        raise UserError("BFFHQ cannot be downloaded automatically: pass --source-dir with the BFFHQ release "
                        "(0.5pct/, valid/, test/) or an FFHQ folder holding a label CSV (FFHQ-Aging's labels)")
    chosen = Path(chosen)
    if not chosen.is_dir():
        raise UserError(f"source {chosen} does not exist or is not a folder")
    return load_release(chosen, allow_unverified, proto) if is_release(chosen) else load_ffhq(chosen, proto)
