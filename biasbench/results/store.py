"""The run store: one JSON record per finished run, checkpoints for unfinished ones.

    RESULTS/runs/<run id>.json          written atomically when a run ends
    RESULTS/checkpoints/<run id>.pt     while it runs; removed when it ends

A run id hashes the full resolved config and the dataset fingerprint, so a
finished id means "this exact experiment is done" and is skipped.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from biasbench import atomic, safe_paths
from biasbench.errors import UserError
from biasbench.results import records as records_check
from biasbench.results.records import RECORD_FORMAT


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def ensure_writable(self) -> None:
        try:
            for sub in ("runs", "checkpoints"):
                atomic.check_writable(self.root / sub)
        except OSError as exc:
            raise UserError(f"cannot write results to {self.root}: {exc.strerror or exc}; choose another --results") from None

    def record_path(self, run_id: str) -> Path:
        return self.root / "runs" / f"{safe_paths.plain_name(run_id, 'run id')}.json"

    def checkpoint_path(self, run_id: str) -> Path:
        return self.root / "checkpoints" / f"{safe_paths.plain_name(run_id, 'run id')}.pt"

    def load(self, run_id: str) -> dict | None:
        path = self.record_path(run_id)
        if not _regular(path):
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError):
            return None  # damaged: the run is redone
        if not isinstance(record, dict):  # JSON, but not a record: the run is redone
            return None
        return record if record.get("format") == RECORD_FORMAT and record.get("run_id") == run_id else None

    def save(self, record: dict) -> Path:
        path = self.record_path(record["run_id"])
        atomic.write_text(path, json.dumps(record, indent=1, sort_keys=True, allow_nan=True) + "\n")
        self.checkpoint_path(record["run_id"]).unlink(missing_ok=True)
        return path

    def records(self) -> tuple[list[dict], list[str]]:
        """Every valid record under RESULTS/runs, and a warning for each file skipped."""
        records, warnings = [], []
        folder = self.root / "runs"
        if not folder.is_dir():
            return records, [f"no runs in {self.root} (expected {folder})"]
        for path in sorted(folder.glob("*.json")):
            if not _regular(path):  # a FIFO would block the read forever, a link may lead anywhere
                warnings.append(f"skipped {path}: not a regular file")
                continue
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
                warnings.append(f"skipped {path}: not valid JSON ({exc.__class__.__name__})")
                continue
            why = records_check.problem(record)
            if why is not None:
                warnings.append(f"skipped {path}: {why}")
                continue
            records.append(record)
        return records, warnings


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
