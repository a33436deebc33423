"""The built wheel works outside the checkout: `python -m build` makes a wheel and an sdist, and the wheel,
installed into a fresh venv, generates Colored MNIST from the shared MNIST files, trains 20 steps and writes a
leaderboard, with no file of the checkout on its path.

The fresh venv gets the wheel only (`pip install --no-deps`); its dependencies come from this venv's
site-packages through a .pth line, so the test needs no index and no second copy of torch. A line in a .pth
file adds a folder to sys.path without running that folder's own .pth files, so the checkout's editable
install is not active in the fresh venv: `biasbench` can only come from the wheel (the test checks its path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("BIASBENCH_SHARED", REPO.parent / "shared" / "data")) / "mnist"

pytestmark = pytest.mark.slow


def _run(cmd: list, cwd: Path, env: dict, timeout: int = 300) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """dist/ with the wheel and the sdist, built from a copy-free run of `python -m build` on the checkout."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO], REPO, dict(os.environ), 600)
    return out


def test_build_makes_a_wheel_and_an_sdist_with_every_package_and_the_licence(dist):
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert [w.name for w in wheels] == ["biasbench_spurious-0.1.0-py3-none-any.whl"]
    assert [s.name for s in sdists] == ["biasbench_spurious-0.1.0.tar.gz"]
    names = zipfile.ZipFile(wheels[0]).namelist()
    for module in ("biasbench/cli/__init__.py", "biasbench/generators/cmnist.py", "biasbench/baselines/rest.py",
                   "biasbench/results/selection.py", "biasbench/protocol/profiles.py"):
        assert module in names, module
    assert not any(n.startswith(("generators/", "baselines/", "tests/")) for n in names)  # only inside biasbench/
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(wheels[0]).read("biasbench_spurious-0.1.0.dist-info/METADATA").decode()
    assert "Name: biasbench-spurious" in meta and "License-Expression: MIT" in meta
    assert "biasbench = biasbench.cli:main" in zipfile.ZipFile(wheels[0]).read(
        "biasbench_spurious-0.1.0.dist-info/entry_points.txt").decode()
    members = tarfile.open(sdists[0]).getnames()
    for f in ("LICENSE", "pyproject.toml", "README.md", "generators/cmnist.py", "baselines/erm.py"):
        assert f"biasbench_spurious-0.1.0/{f}" in members, f


@pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").is_file() and not MNIST.is_dir(),
                    reason="no ../shared/data/mnist")
def test_the_wheel_in_a_fresh_venv_generates_trains_and_writes_a_leaderboard(dist, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, dict(os.environ))
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                     dict(os.environ)).strip())
    (site / "_deps_from_the_project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("*.whl"))
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "--quiet", wheel],
         tmp_path, dict(os.environ))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BIASBENCH_DATA")}
    env.update(OMP_NUM_THREADS="1", HOME=str(tmp_path))
    where = _run([py, "-c", "import biasbench, biasbench.generators.cmnist as g; print(biasbench.__file__); "
                  "print(g.__file__)"], tmp_path, env).split()
    assert all(Path(w).is_relative_to(site) for w in where), where  # the wheel's copy, not the checkout's
    cli = venv / "bin" / "biasbench"
    out = _run([cli, "generate", "cmnist", "--ratio", "1pct", "--source-dir", MNIST, "--out", "data"], tmp_path, env)
    assert (tmp_path / "data" / "cmnist" / "README.md").is_file(), out
    card = (tmp_path / "data" / "cmnist" / "README.md").read_text()
    assert "pip install dist/biasbench_spurious-0.1.0-py3-none-any.whl" in card  # the line this test just did
    _run([cli, "run", "--method", "erm", "--ratio", "1pct", "--seeds", "1", "--steps", "20", "--eval-every", "10",
          "--profile", "cpu", "--device", "cpu", "--data-dir", "data", "--results", "results"], tmp_path, env)
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert record["steps_trained"] == 20 and [e["step"] for e in record["history"]] == [10, 20]
    assert record["git_commit"] is None  # no checkout to name
    out = _run([cli, "leaderboard", "--results", "results", "--out", "lb", "--name", "wheel", "--latex"], tmp_path, env)
    csv = (tmp_path / "lb" / "wheel.csv").read_text().splitlines()
    assert len(csv) == 2 and csv[1].startswith('cmnist,1pct,erm,cpu,"eval_every=10,steps=20",valid,valid: class+bias,1,'), csv
    assert "\\toprule" in (tmp_path / "lb" / "wheel.tex").read_text()
