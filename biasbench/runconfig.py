"""A run's fully resolved configuration and its id.

Everything a run uses is resolved here from (profile, dataset, ratio, method,
seed) plus explicit overrides, so the result records it and the run id (a
hash of the config and the dataset's content fingerprint) changes whenever
anything that could change the result changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Mapping
from decimal import Decimal

from biasbench.datasets import DATASETS
from biasbench.errors import UserError
from biasbench.overrides import get as get_override
from biasbench.protocol import DENSITY_SWEEP, PROFILES, REST_PUBLISHED_DENSITY, TrainProtocol
from biasbench.ratios import config_name, ratio_from_config

MAX_SEEDS = 1000  # --seeds: a typo guard (a run per seed per cell), far above any protocol's 3-10
REST_PUBLISHED = "rest-published"  # --density: REST Table 2's best density per ratio (a named variant)


# Protocol fields added after records existed, at the value that reproduces those records: a config records
# them only when it sets another value, so the run ids of configs that do not set them do not depend on them.
_RECORDED_WHEN_SET = {"input_divisor": 1.0}


@dataclass(frozen=True)
class RunConfig:
    method: str
    dataset: str
    ratio: str  # config name, e.g. "1pct"
    seed: int
    profile: str
    protocol: TrainProtocol
    steps: int
    eval_every: int
    beta: float | None  # None for methods that do not reweight
    density: float | None  # None for dense methods
    overrides: dict  # what the user changed from the profile, e.g. {"steps": 200}
    # How `density` was chosen ("valid", "prior", "user", "rest-published"; None: dense). It does not change
    # the computation, so it is recorded beside the config (record["density_rule"]), not in the run id.
    density_rule: str | None = None
    # The method's own numbers (its `Params` from baselines/<method>.py, `own_params`), None for a method
    # without any; recorded as `method_params`.
    params: object | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("density_rule")
        out.pop("params")
        out["protocol"] = {
            k: v for k, v in out["protocol"].items()
            if k not in ("beta", "density", "chosen_density", "seeds", "steps", "epochs", "eval_every", "methods")
            and not (k in _RECORDED_WHEN_SET and v == _RECORDED_WHEN_SET[k])
        }
        params = self.method_params()
        if params:  # only methods with their own hyperparameters record them (other methods' configs lack the key)
            out["method_params"] = params
        return json.loads(json.dumps(out, sort_keys=True))  # tuples -> lists, stable order

    def method_params(self) -> dict:
        """This method's own hyperparameters (`params`), per-ratio tables resolved for this run's ratio."""
        params = self.params
        if params is None:
            return {}

        out = {}
        for k, v in dataclasses.asdict(params).items():
            if v is None or v == {}:  # a number the method leaves to the profile (DisEnt's lr): not recorded
                continue
            out[k] = float(v.get(self.ratio, _nearest(v, ratio_from_config(self.ratio)))) if isinstance(v, dict) else v
        return out

    def variant(self) -> str:
        """'' for the profile as written, else e.g. 'steps=200'."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))

    def run_id(self, data_fingerprint: str) -> str:
        payload = json.dumps({"config": self.to_dict(), "data": data_fingerprint}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return f"{self.dataset}-{self.ratio}-{self.method}-{self.profile}-s{self.seed}-{digest}"


def profile_names() -> list[str]:
    return sorted(PROFILES)


def get_protocol(profile: str, dataset: str) -> TrainProtocol:
    """The profile's protocol for the dataset's family (biasbench/datasets.py), or one line saying why not."""
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; choose one of: {', '.join(profile_names())}")
    family = DATASETS.info(dataset).family
    if family not in PROFILES[profile]:
        raise UserError(f"profile {profile!r} has no protocol for dataset {dataset!r} (family {family!r})")
    return PROFILES[profile][family]


def resolve(
    method: str,
    dataset: str,
    ratio: Decimal,
    seed: int,
    profile: str,
    n_train: int,
    uses: object,
    given: Mapping | None = None,
    density: float | str | None = None,
    params: object | None = None,
    recorded_params: Mapping | None = None,
) -> RunConfig:
    """The run config of one (method, dataset, ratio, seed, profile) with the user's overrides.

    `uses` is the method's registry entry (its `uses_beta`, `uses_density`, `default_density`); `given` holds
    the overrides the user gave (biasbench/overrides.py, by name); `density` is a number, REST_PUBLISHED, or
    None for the default; `params` the method's own numbers and `recorded_params` the `--set` values that
    differ from the method's (recorded as overrides)."""
    given = dict(given or {})
    p = get_protocol(profile, dataset)
    name = config_name(ratio)
    per_epoch = math.ceil(n_train / p.batch_size)
    overrides: dict = {}
    fields: dict = {}
    for key, value in given.items():
        o = get_override(key)
        if value is None or value == o.default or not o.applies(uses):
            continue
        if o.check is not None:
            o.check(value)
        overrides[key] = value
        if o.field is not None:
            fields[o.field] = value
    protocol_fields = {k: v for k, v in fields.items() if k in _PROTOCOL_FIELDS}
    if protocol_fields:
        p = dataclasses.replace(p, **protocol_fields)
    steps = fields.get("steps")
    resolved_steps = steps if steps is not None else (p.steps if p.steps is not None else p.epochs * per_epoch)
    eval_every = fields.get("eval_every")
    if eval_every is not None and eval_every > resolved_steps:  # "evaluate at the end": one computation, many ids
        raise UserError(f"--eval-every {eval_every} is more than the run's {resolved_steps} steps; pass "
                        f"--eval-every {resolved_steps} (evaluate once, at the end) or less")
    if eval_every is None:
        eval_every = p.eval_every if p.eval_every is not None else per_epoch
    eval_every = max(1, min(eval_every, resolved_steps))
    run_beta = None
    if uses.uses_beta:
        beta = fields.get("beta")
        run_beta = float(beta) if beta is not None else float(p.beta.get(name, _nearest(p.beta, ratio)))
    run_density, rule = None, None
    if uses.uses_density:
        default, default_rule = _default_density(p, method, ratio, uses.default_density)
        if density == REST_PUBLISHED:
            table = REST_PUBLISHED_DENSITY.get(dataset)
            if table is None:
                raise UserError(f"REST publishes no density for {dataset!r}")
            density, rule = float(table.get(name, _nearest(table, ratio))), REST_PUBLISHED
        elif density is not None:
            if not 0.0 < density <= 1.0:
                raise UserError(f"--density must be in (0, 1], got {density}")
            rule = "user"
        if density is not None and (default is None or float(density) != default):
            overrides["density"] = float(density)  # the default density is the same run, whether named or not
        if density is None or (rule == "user" and float(density) == default):
            rule = default_rule
        run_density = float(density) if density is not None else default
    overrides.update(recorded_params or {})
    return RunConfig(method, dataset, name, seed, profile, p, resolved_steps, eval_every, run_beta, run_density,
                     overrides, rule, params)


# Protocol fields an override may replace (those a run config holds itself, such as steps, are set there).
_PROTOCOL_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainProtocol)) - {
    "steps", "eval_every", "beta", "density"}


def _default_density(p: TrainProtocol, method: str, ratio: Decimal, method_has_default: bool):
    """(density, how it was chosen) without --density: the profile's validation choice, else its prior; the
    method's own (MRM's probe: None, "method") when it has no default."""
    if method in p.chosen_density:
        return float(p.chosen_density[method]), "valid"
    if method_has_default:
        return float(p.density.get(config_name(ratio), _nearest(p.density, ratio))), "prior"
    return None, "method"


def default_density(profile: str, dataset: str, method: str, ratio_name: str, method_has_default: bool = True
                    ) -> float | None:
    """The density a run of the sparse `method` gets today without --density (None: no profile, or the method
    decides: `method_has_default` False). The caller says what the method is (results/leaderboard.py)."""

    try:
        p = get_protocol(profile, dataset)
    except UserError:
        return None
    return _default_density(p, method, ratio_from_config(ratio_name), method_has_default)[0]


def _nearest(table: dict, ratio: Decimal) -> float:
    """For a non-standard ratio: the value of the nearest standard ratio (recorded in the config)."""

    return table[min(table, key=lambda k: abs(ratio_from_config(k) - ratio))]


def profile_seeds(protocol: TrainProtocol, n: int) -> list[int]:
    """The profile's seeds first; more than it lists continue from its largest (run and sweep agree)."""
    if n < 1:
        raise UserError(f"--seeds must be at least 1, got {n}")
    if n > MAX_SEEDS:
        raise UserError(f"--seeds {n} is more than {MAX_SEEDS:,} runs per cell; ask for fewer")
    extra = range(max(protocol.seeds) + 1, max(protocol.seeds) + 1 + n)
    return (list(protocol.seeds) + list(extra))[:n]


def parse_densities(text: str | None) -> list[float | None]:
    """`--density`: None (the profile's default), 'sweep' (REST's 14), 'rest-published', or a comma list."""
    if text is None or text.strip().lower() in ("", "default"):
        return [None]
    if text.strip().lower() == "sweep":
        return list(DENSITY_SWEEP)
    if text.strip().lower() == REST_PUBLISHED:
        return [REST_PUBLISHED]
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise UserError(f"--density takes a number in (0, 1], a comma list, 'sweep' or '{REST_PUBLISHED}'; "
                            f"got {part.strip()!r}") from None
        if not 0.0 < value <= 1.0:
            raise UserError(f"--density must be in (0, 1], got {part.strip()}")
        out.append(value)
    return out
