"""Hugging Face Hub access: recognising repo ids and fetching snapshots (with the Hub's cache)."""

from __future__ import annotations

import re
from pathlib import Path

from biasbench.errors import UserError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_repo_id(spec: str) -> str | None:
    """'hf://owner/name' or 'owner/name' (when no such local path exists) -> 'owner/name'."""
    if spec.startswith("hf://"):
        repo = spec[len("hf://"):].strip("/")
        if not _REPO_ID.match(repo):
            raise UserError(f"{spec!r} is not a Hub dataset id like hf://OWNER/NAME")
        return repo
    if _REPO_ID.match(spec) and not Path(spec).exists():
        return spec
    return None


def scrub(text: str, token: str | None) -> str:
    """Remove a token from a message that may end up on screen."""
    return text.replace(token, "***") if token else text


def fetch(repo_id: str, revision: str | None = None) -> Path:
    """Download (or reuse from the Hub cache) a dataset repo snapshot; returns its local folder."""
    from huggingface_hub import get_token, snapshot_download

    token = get_token()
    try:
        path = snapshot_download(repo_id, repo_type="dataset", revision=revision)
    except Exception as exc:  # offline, 404, auth: all end the command with one line
        reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, token)
        raise UserError(
            f"cannot fetch dataset {repo_id} from the Hugging Face Hub ({type(exc).__name__}: {reason[:160]}); "
            "check the network and the repo id, or pass a local folder"
        ) from None
    return Path(path)
