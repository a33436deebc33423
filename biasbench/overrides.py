"""What a user may change in a profile, declared once.

Each `Override` is one row: its flag, type and help (argparse is built from the rows), the check of its value,
which methods it applies to, and where it lands in the run's config. A value that differs from the row's
`default` ("not given") is recorded in `RunConfig.overrides`, so it is in the run id and the variant; an
override that is not given adds nothing, so a new row never moves an existing run id.

A method's own numbers (its `Params`) are changed with `--set METHOD.FIELD=VALUE[,VALUE...]` (`parse_sets`,
`apply_sets`): a comma list is swept. They land in the config's `method_params` and, when they differ from
the method's value, in `overrides` as `METHOD.FIELD`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from biasbench.errors import UserError

AMP_DTYPES = ("bf16",)  # --amp: autocast dtypes a CUDA run may train and evaluate in


def _positive_int(flag: str) -> Callable[[object], None]:
    def check(value) -> None:
        if value < 1:
            raise UserError(f"{flag} must be a positive integer, got {value}")
    return check


def _positive_finite(flag: str) -> Callable[[object], None]:
    def check(value) -> None:
        if not (value > 0 and math.isfinite(value)):  # inf trains to NaN and records chance accuracy
            raise UserError(f"{flag} must be a positive finite number, got {value}")
    return check


def _one_of(flag: str, choices: tuple) -> Callable[[object], None]:
    def check(value) -> None:
        if value not in choices:
            raise UserError(f"{flag} takes {', '.join(choices)}; got {value!r}")
    return check


def _any_method(method_cls) -> bool:
    return True


@dataclass(frozen=True)
class Override:
    """One user override. `value` is what a run records when the flag is given (a switch's value);
    `field` names the `RunConfig` field or `TrainProtocol` field it replaces (None: read by the trainer from
    `cfg.overrides`); `applies` says which methods use it (others ignore it; a run of only those is refused)."""

    name: str  # key in RunConfig.overrides and the argparse dest
    flag: str
    help: str
    type: Callable | None = None  # None: a switch that records `value`
    metavar: str | None = None
    choices: tuple | None = None
    value: object = None  # a switch's recorded value
    check: Callable[[object], None] | None = None
    field: str | None = None  # "steps", "eval_every", "beta" (RunConfig) or a TrainProtocol field
    applies: Callable[[type], bool] = _any_method
    applies_to: str = ""  # what `applies` means, for the error line ("methods that reweight by it")

    @property
    def default(self) -> object:
        """The value that means 'not given' (a switch's opposite)."""
        return None if self.type is not None or self.choices is not None else (not self.value)

    def add_argument(self, parser: argparse.ArgumentParser) -> None:
        if self.type is None and self.choices is None:
            parser.add_argument(self.flag, dest=self.name, action="store_const", const=self.value,
                                default=self.default, help=self.help)
        else:
            parser.add_argument(self.flag, dest=self.name, type=self.type, choices=self.choices,
                                metavar=self.metavar, help=self.help)


OVERRIDES: tuple[Override, ...] = (
    Override("steps", "--steps", "override the profile's budget in optimizer steps", int, "N",
             check=_positive_int("--steps"), field="steps"),
    Override("eval_every", "--eval-every", "override how often (steps) to evaluate and checkpoint", int, "N",
             check=_positive_int("--eval-every"), field="eval_every"),
    Override("amp", "--amp", "CUDA: train and evaluate under bf16 autocast (in the run id; default: fp32)",
             choices=AMP_DTYPES, check=_one_of("--amp", AMP_DTYPES)),
    Override("channels_last", "--contiguous",
             "NCHW contiguous tensors instead of channels_last (in the run id; default: channels_last)", value=False),
    Override("cudnn_benchmark", "--cudnn-benchmark",
             "CUDA: autotuned cuDNN kernels, faster but not bit-reproducible (in the run id; default: deterministic)",
             value=True),
    Override("beta", "--beta", "override the profile's reweighting beta", float, "B",
             check=_positive_finite("--beta"), field="beta", applies=lambda cls: cls.uses_beta,
             applies_to="methods that reweight by it"),
)


def get(name: str) -> Override:
    return next(o for o in OVERRIDES if o.name == name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every override's flag (run and sweep)."""
    for o in OVERRIDES:
        o.add_argument(parser)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.FIELD=V[,V...]",
                        help="change one of a method's own numbers (see 'biasbench methods'), e.g. --set lff.q=0.5; "
                             "a comma list sweeps the values; recorded in the run id; repeatable")


def from_args(args: argparse.Namespace) -> dict:
    """{name: value} of the overrides given on the command line."""
    return {o.name: getattr(args, o.name) for o in OVERRIDES if getattr(args, o.name, o.default) != o.default}


def validate(given: dict, method_classes: dict[str, type]) -> None:
    """Each given value checked, and refused when none of the methods uses it (never silently ignored)."""
    for name, value in given.items():
        o = get(name)
        if o.check is not None:
            o.check(value)
        if method_classes and not any(o.applies(cls) for cls in method_classes.values()):
            users = ", ".join(sorted(m for m, cls in _registered().items() if o.applies(cls)))
            names = ", ".join(method_classes)
            verdict = f"{names} has no {o.name}" if len(method_classes) == 1 else f"none of {names} has a {o.name}"
            raise UserError(f"{o.flag} applies to {o.applies_to} ({users}); {verdict}")


def _registered() -> dict[str, type]:
    from biasbench.methods import get as get_method, names

    return {m: get_method(m) for m in names()}


# ---- --set METHOD.FIELD=VALUE ------------------------------------------------------------------------------

def parse_sets(texts: list[str], method_classes: dict[str, type]) -> dict[str, dict[str, tuple[str, ...]]]:
    """'lff.q=0.5,0.7' -> {'lff': {'q': ('0.5', '0.7')}}, each field checked against the method's Params."""
    from biasbench.methods import canonical

    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for text in texts:
        key, sep, values = text.partition("=")
        method, dot, field = key.strip().partition(".")
        if not sep or not dot or not method or not field or not values.strip():
            raise UserError(f"--set takes METHOD.FIELD=VALUE (e.g. --set lff.q=0.5); got {text!r}")
        method = canonical(method)
        if method not in method_classes:
            raise UserError(f"--set {key.strip()}: {method} is not among the methods run ({', '.join(method_classes)})")
        params = method_classes[method].Params
        fields = [f.name for f in dataclasses.fields(params)] if params is not None else []
        if field not in fields:
            raise UserError(f"--set {key.strip()}: {method} has no parameter {field!r} "
                            f"({'its parameters: ' + ', '.join(fields) if fields else 'it has none'})")
        parts = tuple(v.strip() for v in values.split(",") if v.strip())
        default = getattr(params(), field)
        for part in parts:  # a bad value is refused here, before any data is generated
            _coerce(f"{method}.{field}", part, next(iter(default.values()), None) if isinstance(default, dict) else default)
        out.setdefault(method, {})[field] = parts
    return out


def combinations(sets: dict[str, tuple[str, ...]]) -> list[dict[str, str]]:
    """Every combination of one method's --set values ([{}] when none)."""
    combos: list[dict[str, str]] = [{}]
    for field, values in sets.items():
        combos = [{**c, field: v} for c in combos for v in values]
    return combos


def apply_sets(method: str, params, ratio: str, values: dict[str, str]) -> tuple[object, dict]:
    """(the Params with `values` put in, {'METHOD.FIELD': value} of those that differ from the method's)."""
    if not values:
        return params, {}
    changes, recorded = {}, {}
    for field, text in values.items():
        current = getattr(params, field)
        if isinstance(current, dict):  # a per-ratio table: the value of this run's ratio
            current = current.get(ratio)
        value = _coerce(f"{method}.{field}", text, current)
        changes[field] = value
        if value != current:
            recorded[f"{method}.{field}"] = value
    return dataclasses.replace(params, **changes), recorded


def _coerce(key: str, text: str, current):
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise UserError(f"--set {key} takes true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if isinstance(current, str):
        return text
    kind = int if isinstance(current, int) else float
    try:
        value = kind(text)
    except ValueError:
        raise UserError(f"--set {key} takes {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise UserError(f"--set {key} must be finite, got {text!r}")
    return value
