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
  total length, e.g. no schedule: tests/test_selection.py shows it on ERM);
- `valid_worst_class`: the first evaluation with the best worst-class
  accuracy on valid, and `valid_accuracy`: the best plain valid accuracy.
  Both read only the class label of each valid sample, never its bias label
  (Lee et al. 2022, "Improving Evaluation of Debiasing in Image
  Classification"; SubpopBench's ValWorstAccAttributeNo), whereas `valid` on
  an unbiased or group metric needs the bias label of every valid sample.

Which labels a rule reads (`labels_read`) is printed beside every table
made under it, like the `bias_labels` column for training.

Evaluations of a stage a method declares not selectable (MRM's stages 1-2,
JTT's first model) are never chosen (`training/method.selectable_entries`).
A record without a history (a summary made by hand or by an older writer) is read from the trainer's stored
choice for `valid`, `final` and `oracle`; other rules skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

from biasbench.errors import UserError

_SPLITS = ("valid", "test")


def history(record: dict) -> list[dict]:
    """The record's evaluations that model selection may pick, in order."""
    from biasbench.methods import get as get_method

    from biasbench.training.method import selectable_entries

    try:
        cls = get_method(record["method"])
    except UserError:
        return list(record.get("history") or [])
    return selectable_entries(cls, record)


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


def worst_class(metrics: dict) -> float:
    """Lowest per-class accuracy from the label x bias counts: row sums only, so no bias label is used."""
    groups = metrics["groups"]
    rows = [(sum(c), sum(t)) for c, t in zip(groups["correct"], groups["total"])]
    return min(c / t for c, t in rows if t)


@dataclass(frozen=True)
class BestValidNoBias:
    """Best valid score on a metric that needs class labels only ("accuracy" or the worst class)."""

    metric: str

    @property
    def name(self) -> str:
        return f"valid_{self.metric}"

    def choose(self, record: dict) -> dict:
        best, score = None, None
        for e in history(record):  # strictly better only: the first of equal scores, as BestValid
            s = worst_class(e["valid"]) if self.metric == "worst_class" else float(e["valid"][self.metric])
            if best is None or s > score:
                best, score = e, s
        if best is None:
            raise KeyError("history")
        return best


RULES = {"valid": BestValid(), "final": Final(), "oracle": Oracle(), "last3": MeanOfLast(3),
         "valid_worst_class": BestValidNoBias("worst_class"), "valid_accuracy": BestValidNoBias("accuracy")}

# Which labels a valid-split metric reads: every group or unbiased metric needs each sample's bias label.
_CLASS_ONLY = {"accuracy", "worst_class"}


def labels_read(name: str, selection_metric: str | None = None) -> str:
    """What the rule reads to choose, e.g. 'valid: class+bias' or 'none' (the `selection_labels` column)."""
    if name in ("final", "last3"):
        return "none"
    if name == "oracle":
        return "test: class+bias"
    if name.startswith("valid_"):
        return "valid: class"
    if selection_metric is None:
        return "valid: class+bias"
    return "valid: class" if selection_metric in _CLASS_ONLY else "valid: class+bias"


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
