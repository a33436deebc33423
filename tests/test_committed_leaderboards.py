"""The committed leaderboards are what their committed records make: `biasbench leaderboard` re-makes each CSV
byte for byte (README: leaderboard/README.md gives the one command per table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasbench.results import leaderboard
from biasbench.results.store import RunStore

BOARD = Path(__file__).resolve().parents[1] / "leaderboard"
COMMITTED = sorted(p.stem for p in BOARD.glob("*.csv") if (BOARD / "runs" / p.stem / "runs").is_dir())


def test_there_are_committed_leaderboards():
    assert "cmnist-cpu" in COMMITTED


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_records_re_make_the_committed_csv(name, tmp_path):
    records, warnings = RunStore(BOARD / "runs" / name).records()
    assert not warnings, warnings
    runs, more = leaderboard.runs_table(records, "valid")
    csv_path, _ = leaderboard.write(leaderboard.aggregate(runs, "valid"), tmp_path, name)
    assert csv_path.read_text() == (BOARD / f"{name}.csv").read_text(), (
        f"leaderboard/{name}.csv is stale: re-make it with the command in leaderboard/README.md")
