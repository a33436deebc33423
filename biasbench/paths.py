"""Where generated datasets live.

`--out` (generate) and `--data-dir` (everything that reads datasets) default
to $BIASBENCH_DATA, else ~/.cache/biasbench/datasets. A dataset built with
the canonical seed lives in ROOT/<dataset>; another seed is another dataset
and lives in ROOT/<dataset>-seed<N>; a construction other than the canonical
conflict rule (biasbench.protocol.CONFLICT_RULES) is another dataset too, in
ROOT/<dataset>-<rule>[-seed<N>].
"""

from __future__ import annotations

import os
from pathlib import Path

from biasbench.protocol import CANONICAL_CONFLICTS, CANONICAL_SEED


def data_root(arg: str | os.PathLike | None = None) -> Path:
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("BIASBENCH_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "biasbench" / "datasets"


def dataset_dirname(dataset: str, seed: int = CANONICAL_SEED, conflicts: str = CANONICAL_CONFLICTS) -> str:
    name = dataset if conflicts == CANONICAL_CONFLICTS else f"{dataset}-{conflicts}"
    return name if seed == CANONICAL_SEED else f"{name}-seed{seed}"


def dataset_dir(root: Path, dataset: str, seed: int = CANONICAL_SEED, conflicts: str = CANONICAL_CONFLICTS) -> Path:
    return Path(root) / dataset_dirname(dataset, seed, conflicts)
