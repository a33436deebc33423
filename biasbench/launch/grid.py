"""Grid expansion: methods x datasets x ratios x densities x seeds -> planned runs.

Each planned run is a `RunRequest` for one ratio and one seed, and its run id
comes from `runner.resolve_request` and the dataset's content fingerprint, so
`sweep` and `run` name (and skip) the same experiments. The dataset sizes
and fingerprints are read from the generated folder's metadata: planning
never loads images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import torch

from biasbench.progress import SILENT, Reporter
from biasbench.ratios import config_name
from biasbench.results.store import RunStore
from biasbench.runner import RunRequest, ensure_configs, resolve_request


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
    steps: int | None = None
    eval_every: int | None = None
    beta: float | None = None
    source_dir: Path | None = None
    amp: str | None = None
    cudnn_benchmark: bool = False
    channels_last: bool = True
    data_path: Path | None = None  # `run --data`: one given dataset folder (never generated into)
    restart: bool = False  # `run --restart`: discard the checkpoints of unfinished runs


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    request: RunRequest  # exactly one ratio and one seed; device is chosen where it runs
    density: float | None  # the resolved density (sparse methods), for labels

    @property
    def label(self) -> str:
        r = self.request
        dens = f" d={self.density:g}" if self.density is not None else ""
        return f"{r.dataset} {config_name(r.ratios[0])} {r.method}{dens} s{r.seeds[0]}"


@dataclass
class Plan:
    runs: list[PlannedRun]
    done: set[str]  # run ids with a finished record in the results dir

    @property
    def todo(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.run_id not in self.done]


def expand(spec: SweepSpec, reporter: Reporter = SILENT) -> Plan:
    """Every run of the grid, in grid order, with duplicates removed; generates missing datasets first."""
    from biasbench.methods import get as get_method
    from biasbench.datasets import DATASETS, get as get_dataset
    from biasbench.runconfig import get_protocol, profile_seeds

    classes = {m: get_method(m) for m in spec.methods}  # unknown names fail before any work
    store = RunStore(spec.results)
    runs: dict[str, PlannedRun] = {}
    for dataset in spec.datasets:
        gen = get_dataset(dataset)
        protocol = get_protocol(spec.profile, gen.name)
        for cls in classes.values():  # a method without numbers for the dataset's family: one line, before any data
            cls.own_params(spec.profile, DATASETS.info(gen.name), protocol)
        seeds = profile_seeds(protocol, spec.n_seeds)
        # absolute paths: a worker on another machine (or with another cwd) resolves them the same way
        base = RunRequest(
            method=spec.methods[0], dataset=gen.name, ratios=list(spec.ratios), seeds=seeds, profile=spec.profile,
            data_root=Path(spec.data_root).absolute(), results=Path(spec.results).absolute(),
            device=torch.device("cpu"), steps=spec.steps, beta=spec.beta, eval_every=spec.eval_every,
            amp=spec.amp, cudnn_benchmark=spec.cudnn_benchmark, channels_last=spec.channels_last,
            source_dir=Path(spec.source_dir).absolute() if spec.source_dir else None,
            data_path=Path(spec.data_path).absolute() if spec.data_path else None, restart=spec.restart,
        )
        folder = ensure_configs(base, reporter)  # all missing ratios in one generation
        configs = {c.name: c for c in folder.configs()}
        for method, cls in classes.items():
            densities = spec.densities if cls.uses_density else (None,)
            for ratio in spec.ratios:
                config = configs[config_name(ratio)]
                n_train = int(config.splits["train"]["num_examples"])
                for density in densities:
                    for seed in seeds:
                        req = dataclasses.replace(base, method=method, ratios=[ratio], seeds=[seed], density=density)
                        cfg = resolve_request(req, ratio, seed, n_train)
                        run_id = cfg.run_id(config.fingerprint)
                        runs.setdefault(run_id, PlannedRun(run_id, req, cfg.density))
    done = {run_id for run_id in runs if store.load(run_id) is not None}
    return Plan(list(runs.values()), done)
