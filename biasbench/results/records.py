"""The one validator every reader of run records shares (leaderboard, plot, report, budget, density).

A record is a file anyone can edit. Before a reader looks at it, `problem`
checks the fields readers use have the types the trainer writes (a string
ratio, an integer seed, a number or null density, ...), so a hand-edited
record is skipped with one warning line instead of a traceback; `one_dataset`
keeps every compared group of runs on one dataset fingerprint, saying what it
leaves out, so no row averages runs trained on different data.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Iterable

RECORD_FORMAT = "biasbench-run/1"
_TEXT = ("run_id", "method", "dataset", "ratio", "profile")
_METRICS = ("unbiased", "conflicting", "aligned", "worst_group", "accuracy", "loss")


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _entry_problem(entry: object, where: str) -> str | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        return f"{where} is not an object"
    for split in ("valid", "test"):
        metrics = entry.get(split)
        if metrics is None:
            continue
        if not isinstance(metrics, dict):
            return f"{where}.{split} is not an object"
        bad = next((m for m in _METRICS if m in metrics and not _number(metrics[m])), None)
        if bad is not None:
            return f"{where}.{split}.{bad} is {metrics[bad]!r}, not a number"
    return None


def problem(record: object) -> str | None:
    """Why `record` cannot be read (one short phrase), or None when its fields have the types readers use."""
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return "not a biasbench run record"
    for key in _TEXT:
        if not isinstance(record.get(key), str) or not record[key]:
            return f"{key} is {record.get(key)!r}, not a name"
    if not record["ratio"].endswith("pct"):
        return f"ratio is {record['ratio']!r}, not a config name like '1pct'"
    if not isinstance(record.get("variant", ""), (str, type(None))):
        return f"variant is {record.get('variant')!r}, not text"
    if not isinstance(record.get("seed"), int) or isinstance(record.get("seed"), bool):
        return f"seed is {record.get('seed')!r}, not an integer"
    config, data = record.get("config"), record.get("data")
    if not isinstance(config, dict) or not isinstance(config.get("protocol"), dict) \
            or not isinstance(config["protocol"].get("headline"), str):
        return "config.protocol.headline is missing"
    density = config.get("density")
    if density is not None and not (_number(density) and math.isfinite(density)):
        return f"config.density is {density!r}, not a number"
    if "steps" in config and not (isinstance(config["steps"], int) and not isinstance(config["steps"], bool)):
        return f"config.steps is {config['steps']!r}, not an integer"
    if data is not None and (not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str)):
        return "data.fingerprint is not text"  # absent: a summary made by hand; readers that need it say so
    for key in ("accounting",):
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key} is not an object"
    history = record.get("history")
    if history is not None and not isinstance(history, list):
        return "history is not a list"
    for i, entry in enumerate(history or []):
        if not isinstance(entry, dict) or not _number(entry.get("step")):
            return f"history[{i}] is not an evaluation"
        found = _entry_problem(entry, f"history[{i}]")
        if found:
            return found
    for key in ("best_valid", "final", "best_test_oracle"):
        found = _entry_problem(record.get(key), key)
        if found:
            return found
    return None


def one_dataset(records: list[dict], key: Callable[[dict], tuple]) -> tuple[list[dict], list[str]]:
    """Within each group (`key`), only the runs on one dataset fingerprint: the one most runs share (ties: the
    latest finished). Each run left out is a warning, so counts stay honest and nothing is dropped silently."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    kept_ids, warnings = set(), []
    for group in groups.values():
        counts = Counter(_fingerprint(r) for r in group)
        latest = {fp: max(str(r.get("finished_at", "")) for r in group if _fingerprint(r) == fp) for fp in counts}
        chosen = max(counts, key=lambda fp: (counts[fp], latest[fp]))
        for r in group:
            if _fingerprint(r) == chosen:
                kept_ids.add(id(r))
            else:
                warnings.append(f"skipped run {r.get('run_id')}: trained on dataset {_fingerprint(r)[:12]}, "
                                f"while {counts[chosen]} run(s) of its row are on {chosen[:12]} (a row never mixes "
                                "datasets)")
    return [r for r in records if id(r) in kept_ids], warnings


def _fingerprint(record: dict) -> str:
    data = record.get("data")
    return str(data.get("fingerprint", "")) if isinstance(data, dict) else ""


def nan_free(values: Iterable[object]) -> bool:
    return all(not (isinstance(v, float) and math.isnan(v)) for v in values)


def without_nan(records: list[dict]) -> tuple[list[dict], list[str]]:
    """The records whose valid-selected evaluation has no NaN metric; one warning per run left out, so a mean
    over seeds never counts a seed it cannot average."""
    from biasbench.results import selection

    kept, warnings = [], []
    for r in records:
        try:
            entry = selection.choose(r, "valid")
            values = [entry[split].get(m) for split in ("valid", "test") for m in _METRICS]
        except (KeyError, TypeError, AttributeError):
            kept.append(r)  # the reader says what it misses
            continue
        if nan_free(v for v in values if v is not None):
            kept.append(r)
        else:
            warnings.append(f"skipped run {r.get('run_id')}: a metric at its selected evaluation is NaN")
    return kept, warnings
