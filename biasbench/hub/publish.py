"""Publishing a generated dataset to the Hugging Face Hub in one commit.

`stage` writes exactly the tree that is uploaded (the card and manifest
re-derived for the chosen configs, plus the units those configs use);
`--dry-run DIR` stops there. `publish` creates the dataset repo if needed and
uploads the staged tree as one commit (`create_commit`, atomic on the Hub)
whose message names the biasbench version and the content fingerprints.

Shards: as generated, at most 500 MB each with ~2 MB row groups (see
biasbench.dataset_format.parquet), well under the dataset viewer's limits.

The token comes from HF_TOKEN or the Hub's login cache and is only handed to
`HfApi`; it is never printed, logged, written, or kept in an error message.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from biasbench import __version__, atomic
from biasbench.errors import UserError
from biasbench.dataset_format import card
from biasbench.dataset_format.folder import CARD, MANIFEST, Config, DatasetFolder, dumps
from biasbench.hub.remote import scrub

LOGIN_HINT = "no Hugging Face token found: run `hf auth login` (or set HF_TOKEN) and try again"


def choose_configs(folder: DatasetFolder, names: list[str] | None) -> list[Config]:
    configs = folder.configs()
    if not configs:
        raise UserError(f"{folder.path} holds no complete config; run: biasbench generate {folder.dataset}")
    if names is None:
        return configs
    have = {c.name: c for c in configs}
    missing = [n for n in names if n not in have]
    if missing:
        raise UserError(
            f"{folder.path} has no config {', '.join(missing)} (have: {', '.join(have)}); "
            f"run: biasbench generate {folder.dataset} --ratio {','.join(missing)}"
        )
    return [have[n] for n in names]


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # same bytes, no copy
    except OSError:
        shutil.copy2(src, dst)


def stage(folder: DatasetFolder, generator, configs: list[Config], out: Path, repo_id: str | None = None) -> list[str]:
    """Write the upload tree for `configs` into `out` (must be empty or absent); returns its files. The card's
    load snippet names REPO_ID when given."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; choose an empty or new folder for --dry-run")
    try:
        atomic.check_writable(out)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
    from biasbench.dataset_format.read import read_config

    sizes = (len(generator.schema.label_names), len(generator.schema.bias_names))
    for config in configs:  # only the content the manifest vouches for is staged (sha256, fingerprint, labels)
        for split in config.splits:
            read_config(folder, config, split, sizes=sizes)
    units = {u for c in configs for u in (c.name, *c.required)}
    for unit in sorted(units):
        for name in [*folder.read_unit(unit)["files"], "unit.json"]:
            _place(folder.unit_dir(unit) / name, out / "data" / unit / name)
    (out / CARD).write_text(card.render(generator, configs, repo_id))
    (out / MANIFEST).write_text(dumps(folder.build_manifest(__version__, configs, out / CARD)))
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def commit_message(dataset: str, configs: list[Config]) -> str:
    prints = ", ".join(f"{c.name}={c.fingerprint[:16]}" for c in configs)
    return f"biasbench {__version__}: {dataset} {', '.join(c.name for c in configs)} (content fingerprints {prints})"


def publish(staged: Path, repo_id: str, message: str, private: bool = False, revision: str | None = None, api=None) -> str:
    """Upload the staged tree as one commit; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    token = get_token()
    if not token:
        raise UserError(LOGIN_HINT)
    api = api if api is not None else HfApi(token=token)
    files = sorted(p for p in Path(staged).rglob("*") if p.is_file())
    operations = [CommitOperationAdd(path_in_repo=str(p.relative_to(staged)), path_or_fileobj=str(p)) for p in files]
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        info = api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset", revision=revision)
    except UserError:
        raise
    except Exception as exc:  # network, auth, permissions: one line, token scrubbed
        reason = scrub(str(exc).splitlines()[0] if str(exc) else "", token)
        raise UserError(f"publishing to {repo_id} failed ({type(exc).__name__}: {reason[:200]})") from None
    return str(getattr(info, "commit_url", info))
