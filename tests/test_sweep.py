"""`biasbench sweep`: grid expansion, skip-finished, and the local, Ray and SLURM (submitit) launchers."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from biasbench.cli import main
from biasbench.launch.grid import SweepSpec, expand
from biasbench.launch.sweep import execute
from helpers import assert_one_line_error, run

RATIOS = [Decimal("0.01"), Decimal("0.05")]


@pytest.fixture(scope="module")
def data_root(cmnist_root):
    return cmnist_root  # conftest: one shared build


def spec(data_root: Path, results: Path, methods=("erm",), ratios=RATIOS, steps=2, eval_every=2, **kw) -> SweepSpec:
    return SweepSpec(methods=list(methods), datasets=["cmnist"], ratios=list(ratios), n_seeds=kw.pop("n_seeds", 1),
                     profile="cpu", data_root=data_root, results=results,
                     overrides={"steps": steps, "eval_every": eval_every}, **kw)


def cli_args(data_root: Path, results: Path, *extra: str) -> list[str]:
    return ["sweep", "--methods", "erm", "--ratios", "1pct", "5pct", "--seeds", "1", "--profile", "cpu",
            "--device", "cpu", "--steps", "2", "--eval-every", "2", "--data-dir", str(data_root),
            "--results", str(results), *extra]


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


# ---- grid expansion (no training) ------------------------------------------------------------

def test_grid_has_one_run_per_cell_and_densities_only_for_sparse_methods(data_root, tmp_path, monkeypatch):
    from biasbench.baselines.erm import METHOD as ERM
    from biasbench.methods import METHODS, Display
    from biasbench.protocol import DENSITY_SWEEP

    class Sparse(ERM):  # any method that declares it uses a density
        uses_density = True

    METHODS.add("sparse", Sparse, Display("sparse", "black"))  # a registry line, here made at run time
    try:
        plan = expand(spec(data_root, tmp_path, methods=("erm", "sparse"), n_seeds=2, densities=tuple(DENSITY_SWEEP)))
    finally:
        METHODS.remove("sparse")
    dense = [r for r in plan.runs if r.config.method == "erm"]
    sparse = [r for r in plan.runs if r.config.method == "sparse"]
    assert len(dense) == 2 * 2 and len(sparse) == 2 * 2 * 14
    assert {r.density for r in dense} == {None} and {r.density for r in sparse} == set(DENSITY_SWEEP)
    assert len({r.run_id for r in plan.runs}) == len(plan.runs) and not plan.done
    assert {r.config.seed for r in plan.runs} == {41, 42}  # the profile's seeds, as `run` picks them
    assert all(r.run_id == r.config.run_id(r.fingerprint) for r in plan.runs)  # each carries its resolved config


@pytest.mark.parametrize("n_runs,max_parallel,device,cores,shape", [
    (4, None, "cpu", 2, (2, 1)),   # one process per core, one thread each
    (1, None, "cpu", 2, (1, 2)),   # a lone run gets every core as threads
    (4, 3, "cpu", 8, (3, 2)),
    (4, None, "cuda", 8, (1, 8)),  # runs share the GPU: one at a time unless asked
    (4, 2, "cuda", 8, (2, 4)),
])
def test_local_pool_shape(n_runs, max_parallel, device, cores, shape):
    from biasbench.launch.local import pool_shape

    assert pool_shape(n_runs, max_parallel, device, cores) == shape


# ---- local launcher, through the CLI -----------------------------------------------------------

@pytest.mark.slow
def test_local_sweep_runs_the_grid_then_skips_it_and_run_agrees_on_ids(data_root, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(cli_args(data_root, results, "--max-parallel", "2")) == 0  # a 2-process spawned pool
    out, _ = capsys.readouterr()
    assert "plan: 2 runs, 0 done, 2 to do" in out and "2 process(es) x 1 torch thread(s)" in out
    assert "estimate: 2 runs (erm) have no finished run like them to go by" in out
    assert "sweep: 2 finished, 0 failed" in out
    first = records(results)
    assert len(first) == 2 and not list((results / "checkpoints").glob("*"))
    assert all([h["step"] for h in r["history"]] == [2] for r in first)

    assert main(cli_args(data_root, results)) == 0
    out, _ = capsys.readouterr()
    assert "plan: 2 runs, 2 done, 0 to do" in out and "nothing to do" in out
    # `biasbench run` with the same settings names the same runs, so it skips them too
    assert main(["run", "--method", "erm", "--ratio", "1pct,5pct", "--seeds", "1", "--profile", "cpu", "--device", "cpu",
                 "--steps", "2", "--eval-every", "2", "--data-dir", str(data_root), "--results", str(results)]) == 0
    out, _ = capsys.readouterr()
    assert out.count("finished before, skipped") == 2 and records(results) == first
    # a second seed: its runs are costed at the first seed's measured median
    assert main(cli_args(data_root, results, "--seeds", "2", "--dry-run")) == 0
    out, _ = capsys.readouterr()
    assert "plan: 4 runs, 2 done, 2 to do" in out
    assert "estimate: 2 runs x the median finished run like them (erm " in out and "have no finished" not in out


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_a_failed_run_is_reported_does_not_stop_the_others_and_stays_to_do(data_root, tmp_path, capsys, monkeypatch):
    import biasbench.launch.local as local

    real = local.execute

    def flaky(run, device, threads, *rest):
        if run.config.ratio == "1pct":
            raise RuntimeError("out of memory (simulated)")
        return real(run, device, threads, *rest)

    monkeypatch.setattr(local, "execute", flaky)  # one process: runs train in this one
    results = tmp_path / "results"
    code, out, err = run(capsys, *cli_args(data_root, results, "--max-parallel", "1"))
    assert code == 1 and "sweep: 1 finished, 1 failed" in out
    assert "failed: cmnist 1pct erm s41" in err and "RuntimeError: out of memory (simulated)" in err
    assert len(expand(spec(data_root, results)).todo) == 1


def test_dry_run_lists_the_runs_to_do_and_runs_nothing(data_root, tmp_path, capsys):
    assert main(cli_args(data_root, tmp_path / "results", "--dry-run")) == 0
    out, _ = capsys.readouterr()
    assert "plan: 2 runs, 0 done, 2 to do" in out and out.count("to do: cmnist") == 2 and "dry run" in out
    assert not (tmp_path / "results" / "runs").exists() or not records(tmp_path / "results")


@pytest.mark.parametrize("launcher,module,extra", [("ray", "ray", "ray"), ("slurm", "submitit", "slurm")])
def test_a_launcher_without_its_extra_says_how_to_install_it(capsys, data_root, tmp_path, monkeypatch, launcher,
                                                             module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    code, _, err = run(capsys, *cli_args(data_root, tmp_path, "--launcher", launcher))
    assert_one_line_error(code, err, f"pip install 'biasbench-spurious[{extra}]'")


@pytest.mark.parametrize("args,needle", [(["--methods", "erm", "dro"], "unknown method 'dro'"),
                                         (["--densities", "2"], "--density must be in (0, 1]"),
                                         (["--max-parallel", "0"], "--max-parallel must be at least 1"),
                                         (["--seeds", "0"], "--seeds must be at least 1"),
                                         (["--device", "tpu"], "not a device")])
def test_sweep_user_errors_are_one_line(capsys, data_root, tmp_path, args, needle):
    code, _, err = run(capsys, *cli_args(data_root, tmp_path), *args)
    assert_one_line_error(code, err, needle)


@pytest.mark.skipif(__import__("shutil").which("sbatch") is not None, reason="this machine has SLURM")
def test_slurm_launcher_without_slurm_says_so(capsys, data_root, tmp_path):
    pytest.importorskip("submitit")
    code, _, err = run(capsys, *cli_args(data_root, tmp_path, "--launcher", "slurm"))
    assert_one_line_error(code, err, "sbatch is not on PATH", "--launcher local or ray")


# ---- Ray ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


class _NoLaunch:
    name = "none"

    def describe(self, n: int) -> str:
        return ""

    def run(self, runs):
        raise AssertionError(f"nothing should be launched, got {len(runs)} runs")


@pytest.mark.ray
def test_ray_runs_a_four_run_grid_and_a_second_sweep_does_nothing(ray_cluster, data_root, tmp_path):
    from biasbench.launch.ray_tasks import RayLauncher

    results = tmp_path / "results"
    plan = expand(spec(data_root, results, methods=("erm", "reweighted_erm")))
    assert len(plan.todo) == 4
    outcome = execute(plan, RayLauncher(cpus_per_run=1, device="cpu"), results)
    assert not outcome.failed and len(outcome.finished) == 4
    assert {r["run_id"] for r in records(results)} == {r.run_id for r in plan.runs}
    again = expand(spec(data_root, results, methods=("erm", "reweighted_erm")))
    assert again.todo == [] and len(again.done) == 4
    assert execute(again, _NoLaunch(), results).finished == []


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descends_from_us(pid: int) -> bool:
    """Only this test's Ray (started by this process) is touched, never another session's."""
    while pid > 1:
        pid = _parent(pid)
        if pid == os.getpid():
            return True
    return False


def _ray_run_pids() -> list[int]:
    """Ray names a worker process after the task it runs."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::biasbench-run") and _descends_from_us(int(entry.name)):
                    pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return pids


@pytest.mark.ray
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the Ray worker through /proc")
def test_ray_task_killed_mid_run_is_retried_and_its_record_is_complete(ray_cluster, data_root, tmp_path):
    from biasbench.launch.ray_tasks import RayLauncher

    results = tmp_path / "results"
    plan = expand(spec(data_root, results, ratios=RATIOS[:1], steps=4, eval_every=2))
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(out=execute(plan, RayLauncher(device="cpu"), results)))
    thread.start()
    checkpoint = results / "checkpoints" / f"{plan.runs[0].run_id}.pt"
    killed = []
    deadline = time.monotonic() + 120
    while not killed and thread.is_alive() and time.monotonic() < deadline:
        if checkpoint.is_file():  # after step 2 of 4: kill the worker mid-run
            for pid in _ray_run_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.02)
    thread.join(180)
    assert killed, "the run finished before it could be killed"
    outcome = box["out"]
    assert not outcome.failed and len(outcome.finished) == 1
    record = records(results)[0]
    assert [h["step"] for h in record["history"]] == [2, 4] and record["final"]["step"] == 4
    assert not checkpoint.exists()


# ---- SLURM through submitit's local executor ---------------------------------------------------

@pytest.mark.slurm
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's task process through /proc")
def test_slurm_job_array_runs_on_submitits_local_executor_and_a_preempted_task_resumes(data_root, tmp_path):
    pytest.importorskip("submitit")
    from biasbench.launch.slurm import SlurmLauncher

    results = tmp_path / "results"
    plan = expand(spec(data_root, results, steps=4, eval_every=2))
    launcher = SlurmLauncher(results / "slurm", device="cpu", cluster="local", poll_s=0.2, time_min=10)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(out=execute(plan, launcher, results)))
    thread.start()
    checkpoint = results / "checkpoints" / f"{plan.runs[0].run_id}.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.is_file() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    # SLURM's preemption warning: USR2 to the task (the local executor's controller runs it as a child)
    job = launcher.jobs[0]  # jobs come in plan order
    children = Path(f"/proc/{job.job_id}/task/{job.job_id}/children").read_text().split()
    assert children, "the task finished before it could be preempted"
    for pid in children:
        os.kill(int(pid), signal.SIGUSR2)
    thread.join(180)
    outcome = box["out"]
    assert not outcome.failed and len(outcome.finished) == 2 and len(launcher.job_ids) == 2
    assert {r["run_id"] for r in records(results)} == {r.run_id for r in plan.runs}
    assert all([h["step"] for h in r["history"]] == [2, 4] for r in records(results))
    log = job.stdout() + (job.stderr() or "")
    assert "Requeued job" in log and "resuming 1pct seed 41 from step 2" in log
    assert expand(spec(data_root, results, steps=4, eval_every=2)).todo == []


def test_local_describe_reports_the_threads_runs_get():
    """One worker trains in-process under the caller's thread count (OMP_NUM_THREADS), so
    the plan line must say that count, not cores // 1."""
    import torch

    from biasbench.launch.local import LocalLauncher

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert LocalLauncher(max_parallel=1, device="cpu").describe(5) == "local: this process x 1 torch thread(s)"
    finally:
        torch.set_num_threads(before)
    assert LocalLauncher(max_parallel=2, device="cpu").describe(5).startswith("local: 2 process(es) x ")
