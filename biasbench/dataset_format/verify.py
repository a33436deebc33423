"""Checking a copy of a dataset (local or from the Hub) against its manifest.

Every file listed must exist with its sha256; files under data/ that the
manifest does not list are reported; each config's splits are decoded and
their content fingerprints recomputed; the card's YAML must list exactly the
manifest's configs. With `regenerate`, the dataset is rebuilt from sources
and its fingerprints compared too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from biasbench.errors import UserError
from biasbench.dataset_format.fingerprint import config_fingerprint
from biasbench.dataset_format.folder import CARD, MANIFEST, DatasetFolder, sha256_file
from biasbench.dataset_format.read import arrays_from_files
from biasbench.safe_paths import inside


@dataclass
class Check:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self, detail: str = "") -> str:
        if self.ok:
            return f"{self.name}: OK{(' ' + detail) if detail else ''}"
        return f"{self.name}: MISMATCH: " + "; ".join(self.problems)


def load_manifest(path: Path) -> dict:
    target = Path(path) / MANIFEST
    if not Path(path).is_dir():
        raise UserError(f"{path} is not a folder")
    if not target.is_file():
        raise UserError(f"{path} has no {MANIFEST}: not a biasbench dataset folder")
    try:
        manifest = json.loads(target.read_text())
        manifest["files"], manifest["configs"]  # noqa: B018 (presence check)
        names = list(manifest["files"]) + [f for c in manifest["configs"].values()
                                           for s in c["splits"].values() for f in s["files"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{target} is not a valid manifest ({type(exc).__name__})") from None
    for rel in names:  # every name it lists stays inside the folder, reached without a symbolic link
        inside(Path(path), rel, str(target))
    return manifest


def card_disagreements(listed: list, manifest: dict) -> list[str]:
    """Where the card's `data_files` (what `load_dataset` reads) differ from the manifest's files per split:
    a card that sends 1pct's train split to the test shard is a mismatch, whatever its sha256 says."""
    problems = []
    for entry in listed:
        name = entry.get("config_name")
        want = manifest["configs"].get(name)
        if want is None:
            continue
        card_files = {}
        for d in entry.get("data_files") or []:
            paths = d.get("path")
            card_files[d.get("split")] = [paths] if isinstance(paths, str) else list(paths or [])
        manifest_files = {s: list(info["files"]) for s, info in want["splits"].items()}
        if card_files != manifest_files:
            problems.append(f"card's data_files for {name} differ from the manifest's files")
    return problems


def verify(path: Path) -> list[Check]:
    path = Path(path)
    manifest = load_manifest(path)
    DatasetFolder(path, str(manifest.get("dataset", ""))).units()  # unit.json names are checked the same way
    bad_files: dict[str, str] = {}
    for rel, digest in manifest["files"].items():
        f = path / rel
        if not f.is_file():
            bad_files[rel] = f"{rel} missing"
        elif sha256_file(f) != digest:
            bad_files[rel] = f"{rel} sha256 differs"

    meta = Check("files and card")
    config_files = {f for c in manifest["configs"].values() for s in c["splits"].values() for f in s["files"]}
    meta.problems += [msg for rel, msg in bad_files.items() if rel not in config_files]
    listed = set(manifest["files"])
    data_dir = path / "data"
    extra = sorted(
        str(p.relative_to(path)) for p in data_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and str(p.relative_to(path)) not in listed
    ) if data_dir.is_dir() else []
    meta.problems += [f"{rel} not in the manifest" for rel in extra]
    try:
        header = (path / CARD).read_text().split("---\n")[1]
        listed = yaml.safe_load(header).get("configs", [])
        card_configs = [c["config_name"] for c in listed]
        if card_configs != list(manifest["configs"]):
            meta.problems.append(f"card lists configs {card_configs}, manifest {list(manifest['configs'])}")
        meta.problems += card_disagreements(listed, manifest)
    except (OSError, IndexError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        meta.problems.append("card has no readable YAML header")
    checks = [meta]

    for name, info in manifest["configs"].items():
        check = Check(name)
        splits = info["splits"]
        for split, s in splits.items():
            problems = [bad_files[f] for f in s["files"] if f in bad_files]
            check.problems += problems
            if any(not (path / f).is_file() for f in s["files"]):
                continue
            try:
                arrays = arrays_from_files([path / f for f in s["files"]])
            except Exception as exc:  # a damaged shard is a mismatch, not a crash
                check.problems.append(f"{split} unreadable ({type(exc).__name__})")
                continue
            if arrays.computed_fingerprint() != s["fingerprint"]:
                check.problems.append(f"{split} content fingerprint differs from the manifest")
        if config_fingerprint({k: v["fingerprint"] for k, v in splits.items()}) != info["fingerprint"]:
            check.problems.append("config fingerprint is not the hash of its split fingerprints")
        checks.append(check)
    return checks
