"""Grid expansion: methods x datasets x ratios x densities x --set values x seeds -> planned runs.

Each planned run carries everything its worker needs and nothing to re-derive: its resolved `RunConfig`,
its run id, the dataset folder and the content fingerprint it was planned with. Launchers, the task and
the runner pass it on; no one re-resolves it, so `run` and `sweep` name (and skip) the same experiments.
Dataset sizes and fingerprints come from the generated folder's metadata: planning never loads images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from biasbench.progress import SILENT, Reporter
from biasbench.results.store import RunStore
from biasbench.runconfig import RunConfig


@dataclass(frozen=True)
class SweepSpec:
    """What the user asked for; lists are already parsed and validated by the caller."""

    methods: list[str]
    datasets: list[str]
    ratios: list[Decimal]
    n_seeds: int
    profile: str
    data_root: Path
    results: Path
    densities: tuple[float | None, ...] = (None,)  # runconfig.parse_densities; None: the profile's default
    overrides: dict = field(default_factory=dict)  # biasbench/overrides.py, by name: the values the user gave
    sets: dict = field(default_factory=dict)  # overrides.parse_sets: {method: {field: (value, ...)}}
    source_dir: Path | None = None
    data_path: Path | None = None  # `run --data`: one given dataset folder (never generated into)
    restart: bool = False  # `run --restart`: discard the checkpoints of unfinished runs


@dataclass(frozen=True)
class DataSource:
    """Where a run's dataset is: a given folder (`path`), or a generated root that a worker lacking the
    config generates into (deterministically) from `source_dir`."""

    root: Path | None
    path: Path | None
    source_dir: Path | None


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    config: RunConfig  # resolved once, by the plan
    fingerprint: str  # the dataset content the run was planned with; a worker with other content refuses
    data: DataSource
    results: Path
    restart: bool = False

    @property
    def density(self) -> float | None:
        return self.config.density

    @property
    def label(self) -> str:
        c = self.config
        dens = f" d={c.density:g}" if c.density is not None else ""
        extra = "".join(f" {k}={v}" for k, v in sorted(c.overrides.items()) if "." in k)  # --set values
        return f"{c.dataset} {c.ratio} {c.method}{dens}{extra} s{c.seed}"


@dataclass
class Plan:
    runs: list[PlannedRun]
    done: set[str]  # run ids with a finished record in the results dir

    @property
    def todo(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.run_id not in self.done]


def expand(spec: SweepSpec, reporter: Reporter = SILENT) -> Plan:
    """Every run of the grid, in grid order, with duplicates removed; generates missing datasets first."""
    from biasbench.baselines import configure
    from biasbench.datasets import DATASETS, get as get_dataset
    from biasbench.methods import get as get_method
    from biasbench.overrides import combinations, validate
    from biasbench.ratios import config_name
    from biasbench.runconfig import get_protocol, profile_seeds
    from biasbench.runner import ensure_configs

    classes = {m: get_method(m) for m in spec.methods}  # unknown names fail before any work
    validate(spec.overrides, classes)
    store = RunStore(spec.results)
    runs: dict[str, PlannedRun] = {}
    results = Path(spec.results).absolute()  # absolute paths: a worker elsewhere resolves them the same way
    source_dir = Path(spec.source_dir).absolute() if spec.source_dir else None
    for dataset in spec.datasets:
        gen = get_dataset(dataset)
        protocol = get_protocol(spec.profile, gen.name)
        for cls in classes.values():  # a method without numbers for the dataset's family: one line, before any data
            cls.own_params(spec.profile, DATASETS.info(gen.name), protocol)
        seeds = profile_seeds(protocol, spec.n_seeds)
        source = DataSource(Path(spec.data_root).absolute() if spec.data_path is None else None,
                            Path(spec.data_path).absolute() if spec.data_path else None, source_dir)
        folder = ensure_configs(gen.name, source, spec.ratios, reporter)  # all missing ratios in one generation
        configs = {c.name: c for c in folder.configs()}
        source = DataSource(source.root, folder.path.absolute(), source_dir)
        for method, cls in classes.items():
            densities = spec.densities if cls.uses_density else (None,)
            for ratio in spec.ratios:
                config = configs[config_name(ratio)]
                n_train = int(config.splits["train"]["num_examples"])
                for density in densities:
                    for sets in combinations(spec.sets.get(method, {})):
                        for seed in seeds:
                            cfg = configure(method, gen.name, ratio, seed, spec.profile, n_train, density=density,
                                            sets=sets, **spec.overrides)
                            run_id = cfg.run_id(config.fingerprint)
                            runs.setdefault(run_id, PlannedRun(run_id, cfg, config.fingerprint, source, results,
                                                               spec.restart))
    done = {run_id for run_id in runs if store.load(run_id) is not None}
    return Plan(list(runs.values()), done)
