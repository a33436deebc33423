"""Benchmark: build all four Colored MNIST ratios (train + valid + test, parquet + card).

Each measurement is a fresh process (interpreter start and imports included),
as a user runs `biasbench generate cmnist --ratio all`. Prints a table and
writes benchmarks/results/generate.json.

    .venv/bin/python benchmarks/generate.py [--repeats 3] [--lff-cmd "..."]

`--lff-cmd` times a reference command (LfF's make_dataset.py, see
benchmarks/README.md) side by side, interleaved with ours, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

CHILD = """
import json, sys
from pathlib import Path
from biasbench.generators.build import generate
from biasbench.ratios import parse_ratios
r = generate("cmnist", parse_ratios("all"), Path(sys.argv[1]), 0, Path(sys.argv[2]), workers=int(sys.argv[3]))
print(json.dumps(r.timings))
"""


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the child's largest process, stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
        # wait4 reports this child's own peak RSS (its reaped workers included),
        # unlike RUSAGE_CHILDREN, which is a running maximum over all children.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{err.read()[-2000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def ours(workers: int, source: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bb-bench-"))
    try:
        wall, rss, stdout = run_child([sys.executable, "-c", CHILD, str(out), str(source), str(workers)])
        timings = json.loads(stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in (out / "cmnist").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": wall, "peak_rss_mib": rss, "timings": timings, "bytes": size}


def reference(cmd: str) -> dict:
    wall, rss, _ = run_child(["bash", "-c", cmd])
    return {"wall_s": wall, "peak_rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source-dir", type=Path, default=SHARED_MNIST)
    parser.add_argument("--lff-cmd", help="shell command that runs LfF's CMNIST generation (timed side by side)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "generate.json")
    args = parser.parse_args()
    if not args.source_dir.is_dir():
        sys.exit(f"MNIST source dir {args.source_dir} not found (pass --source-dir)")

    images_written = 4 * 55000 + 5000 + 10000
    runs: dict[str, list[dict]] = {"biasbench_2_workers": [], "biasbench_1_worker": []}
    if args.lff_cmd:
        runs["lff_make_dataset"] = []
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        runs["biasbench_2_workers"].append(ours(2, args.source_dir))
        runs["biasbench_1_worker"].append(ours(1, args.source_dir))
        if args.lff_cmd:
            runs["lff_make_dataset"].append(reference(args.lff_cmd))

    rows = []
    for name, results in runs.items():
        walls = [r["wall_s"] for r in results]
        row = {
            "variant": name,
            "wall_min_s": min(walls),
            "wall_median_s": statistics.median(walls),
            "wall_max_s": max(walls),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
        }
        if "timings" in results[0]:
            best = min(results, key=lambda r: r["wall_s"])
            t = best["timings"]
            row.update(
                images_per_s=images_written / row["wall_median_s"],
                images_rendered=int(t["images_rendered"]),
                sources_s=t["sources"],
                plan_s=t["plan"],
                render_wall_s=t["render"],
                colour_cpu_s=t["colour_cpu"],
                png_cpu_s=t["png_cpu"],
                parquet_write_s=t["write"],
                card_s=t["card"],
                output_mib=best["bytes"] / 2**20,
            )
        rows.append(row)

    print(f"all four CMNIST ratios, {images_written:,} images written; {args.repeats} fresh processes each")
    print(f"{'variant':<22}{'wall min/med/max s':>22}{'img/s':>10}{'peak RSS MiB':>14}")
    for r in rows:
        spread = f"{r['wall_min_s']:.2f}/{r['wall_median_s']:.2f}/{r['wall_max_s']:.2f}"
        ips = f"{r['images_per_s']:,.0f}" if "images_per_s" in r else "-"
        print(f"{r['variant']:<22}{spread:>22}{ips:>10}{r['peak_rss_mib']:>14.0f}")
    best = rows[0]
    print(
        f"\nbiasbench 2 workers, fastest run: sources {best['sources_s']:.2f} s, plan {best['plan_s']:.2f} s, "
        f"render {best['render_wall_s']:.2f} s wall (colouring {best['colour_cpu_s']:.2f} + PNG "
        f"{best['png_cpu_s']:.2f} CPU-s over workers; {best['images_rendered']:,} distinct images), "
        f"parquet+hashing {best['parquet_write_s']:.2f} s, card {best['card_s']:.2f} s; "
        f"{best['output_mib']:.0f} MiB on disk"
    )
    if args.lff_cmd:
        lff = rows[-1]
        print(f"speed-up over LfF (median wall): {lff['wall_median_s'] / best['wall_median_s']:.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from provenance import provenance

    meta = provenance()
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
