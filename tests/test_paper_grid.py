"""benchmarks/device/paper_grid.py --smoke: the GPU grid's whole path on CPU (install check, generation,
the sweep in priority order under a deadline, resume, leaderboard, report, the records tarball)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "device" / "paper_grid.py"


def grid(out, mnist, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--smoke", "--mnist", str(mnist), *extra],
                          capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.mark.slow
def test_smoke_runs_every_method_stops_at_its_deadline_and_resumes(fixture_mnist, tmp_path):
    out = tmp_path / "grid"
    first = grid(out, fixture_mnist, "--minutes", "0.05")  # 3 s: generation eats most of it
    assert first.returncode == 0, first.stderr[-2000:]
    assert "time is up" in first.stdout
    stopped = json.loads((out / "paper_grid.json").read_text())
    assert stopped["finished"] < 7
    second = grid(out, fixture_mnist)
    assert second.returncode == 0, second.stderr[-2000:]
    info = json.loads((out / "paper_grid.json").read_text())
    assert info["finished"] == 7 and set(info["per_method"]) == {
        "rest", "rigl", "erm", "reweighted_erm", "mrm", "disent", "lff"}
    with tarfile.open(out / "records.tar.gz") as t:
        names = t.getnames()
    assert len(names) == 7 and all(n.startswith("runs/") and n.endswith(".json") for n in names)
    csv = (out / "cmnist-smoke.csv").read_text().splitlines()
    assert len(csv) == 1 + 7 and "bias_labels" in csv[0]
    assert (out / "REPRODUCTION.md").is_file()


def test_a_missing_mnist_is_one_line(tmp_path):
    bad = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "o"), "--smoke",
                          "--mnist", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "no MNIST files" in bad.stderr
