"""The `paper` CMNIST grid on a bare GPU machine, in priority order, within a time limit; resumable.

One entry point for the GPU lease (no network there, its own python3 with
torch): it makes biasbench importable from this working tree with the
machine's torch (installing it without dependencies, or the wheels carried
in benchmarks/device/wheels/ for what is missing), generates Colored MNIST
from the MNIST files shipped with the tree, and runs the grid:

    REST, RigL, ERM, reweighted ERM (REST Tables 2-3) at the four ratios,
    seeds 41-43, then MRM, DisEnt, LfF

several runs at once on the one GPU, until --minutes are used. Then it stops
the runs (each resumes from its last evaluation's checkpoint on the next
call), writes the `cmnist-paper` leaderboard and REPRODUCTION.md from what
finished, and packs the records into OUT/records.tar.gz (the device tool
returns at most 8 files). A second call with the same --out continues.

    python3 benchmarks/device/paper_grid.py --out /tmp/grid --minutes 8 [--parallel 6] [--mnist DIR]
    python3 benchmarks/device/paper_grid.py --out /tmp/smoke --smoke     # the same path on CPU, ~1 minute

--smoke: profile `cpu`, 6 steps (MRM 18), one ratio, one seed, all seven
methods, on the CPU: it proves the path (install check, generation, the
sweep, the deadline, the leaderboard, the tarball), not the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WHEELS = HERE / "wheels"
# Priority: REST Table 2 and 3 cells first, then the other methods.
METHODS = ("rest", "rigl", "erm", "reweighted_erm", "mrm", "disent", "lff")
# What biasbench imports at run time (datasets and imagecorruptions are not needed to train CMNIST).
RUNTIME_MODULES = ("numpy", "pandas", "pyarrow", "PIL", "tqdm", "yaml", "matplotlib", "torch")
MNIST_CANDIDATES = (REPO / ".mnist", REPO.parent / "shared" / "data" / "mnist")


def log(msg: str) -> None:
    print(f"[paper_grid {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def missing_modules(python: str) -> list[str]:
    code = ("import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] "
            "if importlib.util.find_spec(m) is None))")
    out = subprocess.run([python, "-c", code, *RUNTIME_MODULES], capture_output=True, text=True, check=True)
    return out.stdout.split()


def biasbench_from_this_tree(python: str) -> bool:
    code = "import biasbench.baselines, biasbench, sys; print(biasbench.__file__)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return out.returncode == 0 and Path(out.stdout.strip()).resolve().is_relative_to(REPO.resolve())


def ensure_installed(python: str) -> None:
    """biasbench from this tree on `python`, with the machine's torch; no network needed."""
    missing = missing_modules(python)
    if missing and WHEELS.is_dir() and any(WHEELS.glob("*.whl")):
        log(f"installing carried wheels for: {' '.join(missing)}")
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        *map(str, sorted(WHEELS.glob("*.whl")))], check=True)
        missing = missing_modules(python)
    if missing:
        sys.exit(f"paper_grid: missing Python modules {', '.join(missing)} and no wheels for them in {WHEELS} "
                 f"(fill it with `pip download --no-deps --only-binary=:all: --python-version 3.12 ...`)")
    if not biasbench_from_this_tree(python):
        log("installing biasbench from this tree (no dependencies, no build isolation, no index)")
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "-e", str(REPO)], check=True)
        if not biasbench_from_this_tree(python):
            sys.exit("paper_grid: biasbench did not become importable from this tree")


def find_mnist(given: str | None) -> Path:
    for candidate in ([Path(given)] if given else list(MNIST_CANDIDATES)):
        if (candidate / "train-images-idx3-ubyte.gz").is_file() or (candidate / "train-images-idx3-ubyte").is_file():
            return candidate
    sys.exit(f"paper_grid: no MNIST files in {given or ' or '.join(map(str, MNIST_CANDIDATES))} "
             "(copy ../shared/data/mnist to .mnist/ and carry it)")


def biasbench(python: str, *args: str, timeout: float | None = None) -> int:
    """Run the CLI in its own process group; past `timeout` seconds the whole group is stopped."""
    cmd = [python, "-c", "import sys; from biasbench.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log("time is up: stopping the runs (each resumes from its last checkpoint on the next call)")
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()


def summary(runs: Path) -> dict:
    records = [json.loads(p.read_text()) for p in sorted((runs / "runs").glob("*.json"))]
    per_method: dict[str, int] = {}
    for r in records:
        per_method[r["method"]] = per_method.get(r["method"], 0) + 1
    rates = [r["images_per_second"] for r in records if r.get("images_per_second")]
    return {"finished": len(records), "per_method": per_method,
            "median_train_img_per_s": sorted(rates)[len(rates) // 2] if rates else None,
            "train_seconds": sum(r.get("train_seconds", 0.0) for r in records),
            "wall_seconds": sum(r.get("wall_time_s", 0.0) for r in records)}


def pack(runs: Path, out: Path) -> Path:
    tar = out / "records.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for p in sorted((runs / "runs").glob("*.json")):
            t.add(p, arcname=f"runs/{p.name}")
    return tar


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="results, data, leaderboard and the records tarball go here")
    ap.add_argument("--minutes", type=float, default=8.0, help="stop starting and running after this (default: 8)")
    ap.add_argument("--parallel", type=int, default=6, help="runs at once on the GPU (default: 6)")
    ap.add_argument("--mnist", help="MNIST IDX files (default: .mnist/ in the tree, else ../shared/data/mnist)")
    ap.add_argument("--smoke", action="store_true", help="the same path on CPU with a tiny budget")
    ap.add_argument("--amp", choices=("bf16",), help="bf16 autocast (a recorded variant; default fp32)")
    args = ap.parse_args(argv)
    start = time.monotonic()
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    ensure_installed(python)
    mnist = find_mnist(args.mnist)
    data, runs = out / "data", out / "results"
    smoke = args.smoke
    name = "cmnist-paper" if not smoke else "cmnist-smoke"
    gen = ["generate", "cmnist", "--ratio", "1pct" if smoke else "all", "--out", str(data), "--source-dir", str(mnist)]
    if smoke:
        gen.append("--allow-unverified")  # a fixture MNIST in the test; the real files verify
    if biasbench(python, *gen) != 0:
        sys.exit("paper_grid: generation failed")
    device = "cpu" if smoke else "cuda"
    sweep = ["sweep", "--methods", *METHODS, "--datasets", "cmnist", "--launcher", "local", "--device", device,
             "--results", str(runs), "--data-dir", str(data), "--max-parallel", str(2 if smoke else args.parallel)]
    if smoke:
        sweep += ["--profile", "cpu", "--ratios", "1pct", "--seeds", "1", "--steps", "6", "--eval-every", "3"]
    else:
        sweep += ["--profile", "paper", "--ratios", "all", "--seeds", "3"]
    if args.amp:
        sweep += ["--amp", args.amp]
    left = args.minutes * 60 - (time.monotonic() - start)
    log(f"sweep for {left / 60:.1f} min: {' '.join(sweep)}")
    code = biasbench(python, *sweep, timeout=max(left, 1.0))
    log(f"sweep ended with code {code}")
    if any((runs / "runs").glob("*.json")):
        biasbench(python, "leaderboard", "--results", str(runs), "--out", str(out), "--name", name)
        biasbench(python, "report", "--results", str(runs), "--out", str(out / "REPRODUCTION.md"))
        pack(runs, out)
    info = {"smoke": smoke, "minutes": args.minutes, "parallel": args.parallel, "device": device,
            "elapsed_s": time.monotonic() - start, **summary(runs)}
    (out / "paper_grid.json").write_text(json.dumps(info, indent=2) + "\n")
    log(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
