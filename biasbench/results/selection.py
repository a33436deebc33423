"""Model selection at read time: rules over a run record's history of evaluations.

Every record keeps every evaluation (valid and test metrics at each
`eval_every`), so a selection rule is a function of the record: a new rule
needs no retraining, and the committed records re-make every table under
it. The trainer also stores its choices (`best_valid`, `best_test_oracle`,
`final`); the rules here reproduce them (tests/test_selection.py checks it
on the committed records) and replace them when tables are read.

- `valid` (default): the first evaluation with the best valid selection
  metric (the profile's, recorded in the config);
- `final`: the last evaluation;
- `oracle`: the first evaluation with the best *test* headline metric, as
  DisEnt reports (PROTOCOL.md): a selection on test, kept only to compare
  with papers that used it, and labelled as such;
- `last3`: the mean of the last three evaluations' metrics, a selection that
  needs neither group labels nor a valid split;
- `valid@N`: `valid` over the evaluations up to step N (the same run read
  at a shorter budget; exact only where nothing in the run depends on its
  total length, e.g. no schedule: tests/test_selection.py shows it on ERM).

Evaluations a method marks as not selectable (MRM's stages 1-2) are never
chosen (`Method.selectable_entry`). A record without a history (a summary
made by hand or by an older writer) is read from the trainer's stored
choice for `valid`, `final` and `oracle`; other rules skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

from biasbench.errors import UserError

_SPLITS = ("valid", "test")


def history(record: dict) -> list[dict]:
    """The record's evaluations that model selection may pick, in order."""
    from biasbench.methods import get as get_method

    entries = record.get("history") or []
    try:
        cls = get_method(record["method"])
    except UserError:
        return list(entries)
    return [e for e in entries if cls.selectable_entry(record, e)]


def _first_best(entries: list[dict], split: str, metric: str) -> dict:
    best = None
    for e in entries:  # strictly better only: the first of equal scores, as the trainer keeps it
        if best is None or e[split][metric] > best[split][metric]:
            best = e
    if best is None:
        raise KeyError("history")
    return best


@dataclass(frozen=True)
class BestValid:
    up_to: int | None = None  # only evaluations at steps <= up_to (a shorter budget of the same run)

    @property
    def name(self) -> str:
        return "valid" if self.up_to is None else f"valid@{self.up_to}"

    def choose(self, record: dict) -> dict:
        if not record.get("history") and self.up_to is None:
            return record["best_valid"]
        entries = history(record)
        if self.up_to is not None:
            entries = [e for e in entries if e["step"] <= self.up_to]
        return _first_best(entries, "valid", record["config"]["protocol"]["selection_metric"])


@dataclass(frozen=True)
class Final:
    name: str = "final"

    def choose(self, record: dict) -> dict:
        entries = record.get("history") or []
        return entries[-1] if entries else record["final"]


@dataclass(frozen=True)
class Oracle:
    name: str = "oracle"

    def choose(self, record: dict) -> dict:
        if not record.get("history"):
            return record["best_test_oracle"]
        return _first_best(history(record), "test", record["config"]["protocol"]["headline"])


@dataclass(frozen=True)
class MeanOfLast:
    k: int = 3

    @property
    def name(self) -> str:
        return f"last{self.k}"

    def choose(self, record: dict) -> dict:
        entries = history(record)[-self.k:]
        if not entries:
            raise KeyError("history")
        out = {"step": entries[-1]["step"]}
        for split in _SPLITS:
            keys = [k for k, v in entries[0][split].items() if isinstance(v, (int, float))]
            out[split] = {k: sum(float(e[split][k]) for e in entries) / len(entries) for k in keys}
        return out


RULES = {"valid": BestValid(), "final": Final(), "oracle": Oracle(), "last3": MeanOfLast(3)}


def get(name: str):
    """A rule by name: one of RULES, or `valid@N` (best valid up to step N)."""
    if name in RULES:
        return RULES[name]
    if name.startswith("valid@"):
        try:
            n = int(name[len("valid@"):])
        except ValueError:
            n = 0
        if n >= 1:
            return BestValid(up_to=n)
    raise UserError(f"unknown selection {name!r}; choose one of: {', '.join(RULES)}, or valid@STEPS")


def choose(record: dict, name: str) -> dict:
    return get(name).choose(record)
