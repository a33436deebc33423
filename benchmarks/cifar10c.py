"""Benchmark: Corrupted CIFAR-10 generation on real CIFAR-10 images.

Three measurements, printed as tables and written to benchmarks/results/cifar10c.json:

1. per corruption, ms/image at severity 5 on 32x32 images (one process), and
   frost before/after biasbench's texture cache, with a profile of where
   frost's time goes;
2. wall time of `--ratio all` (four ratios + valid + test) against one ratio
   (1pct), 2 workers, each a fresh process (target: all <= 1.5x one);
3. `--ratio all` with 1 and 2 workers (target: >= 1.8x on 2 cores).

    .venv/bin/python benchmarks/cifar10c.py [--repeats 2] [--images 300] [--source-dir DIR]

Without --source-dir the shared JPEG copy (../shared/data/cifar10-jpeg) is
materialised into a temporary folder (not the official release: the runs use
--allow-unverified; fine for timing, never for published data).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_JPEG = REPO.parent / "shared" / "data" / "cifar10-jpeg"
sys.path.insert(0, str(HERE))
from generate import run_child  # noqa: E402  (the same fresh-process timer as the CMNIST benchmark)

CHILD = """
import json, sys
from pathlib import Path
from biasbench.generators.build import generate
from biasbench.ratios import parse_ratios
r = generate("cifar10c", parse_ratios(sys.argv[3]), Path(sys.argv[1]), 0, Path(sys.argv[2]), allow_unverified=True,
             workers=int(sys.argv[4]))
print(json.dumps(r.timings))
"""


def per_corruption(source: Path, n: int) -> dict:
    """ms/image of every corruption (Type0 and Type1) on the first n training images, seeded per image."""
    import imagecorruptions.corruptions as corruptions
    from imagecorruptions import corrupt

    from biasbench.generators.cifar10c import _cache_frost_textures
    from biasbench.protocol import CIFAR10C
    from biasbench.sources.cifar10 import load_cifar10

    images = load_cifar10(source, allow_unverified=True).train_images[:n]

    def timed(name: str) -> float:
        t0 = time.perf_counter()
        for i, image in enumerate(images):
            np.random.seed(i)
            corrupt(image, corruption_name=name, severity=CIFAR10C.severity)
        return (time.perf_counter() - t0) / len(images) * 1e3

    real = corruptions.cv2
    assert not getattr(real, "_biasbench_cached", False)
    profile = cProfile.Profile()
    profile.enable()
    frost_plain = timed("frost")
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (calls, ncalls, tottime, cumtime, callers)
    total = sum(v[2] for v in stats.values())
    by_name = {}
    for (_, _, name), v in stats.items():
        by_name[name] = by_name.get(name, 0.0) + v[2]
    frost_profile = {k: by_name.get(f"<{k}>", 0.0) / total for k in ("imread", "resize")}  # cv2's builtins
    _cache_frost_textures()
    ms = {name: timed(name) for name in (*CIFAR10C.type0, *[c for c in CIFAR10C.type1 if c != "original"])}
    corruptions.cv2 = real
    return {"images": len(images), "ms_per_image": ms, "frost_uncached_ms": frost_plain,
            "frost_uncached_time_share": frost_profile}


def generation(source: Path, ratio: str, workers: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bb-bench-c10c-"))
    try:
        load0 = os.getloadavg()[0]
        cpu0 = os.times()
        wall, rss, stdout = run_child([sys.executable, "-c", CHILD, str(out), str(source), ratio, str(workers)])
        cpu1 = os.times()
        timings = json.loads(stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    return {"ratio": ratio, "workers": workers, "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss,
            "timings": timings, "loadavg_1min_before": load0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=300, help="images per corruption for the ms/image table")
    parser.add_argument("--source-dir", type=Path, help="CIFAR-10 python version (default: materialise the JPEG copy)")
    parser.add_argument("--skip-generation", action="store_true", help="only the per-corruption table")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cifar10c.json")
    args = parser.parse_args()

    tmp = None
    source = args.source_dir
    if source is None:
        tmp = Path(tempfile.mkdtemp(prefix="bb-cifar-src-"))
        subprocess.run([sys.executable, str(SHARED_JPEG / "materialize.py"), str(tmp)], check=True, capture_output=True)
        source = tmp
    try:
        table = per_corruption(source, args.images)
        print(f"ms/image at severity 5, 32x32, {table['images']} real CIFAR-10 images, one process:")
        for name, ms in sorted(table["ms_per_image"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:<20}{ms:8.3f}")
        share = table["frost_uncached_time_share"]
        print(f"  frost without the cache: {table['frost_uncached_ms']:.3f} ms/image "
              f"(cv2.imread {share['imread']:.0%}, cv2.resize of the texture {share['resize']:.0%} of its time)")
        runs: list[dict] = []
        if not args.skip_generation:
            for _ in range(args.repeats):  # interleaved, so load drift hits every variant alike
                for ratio, workers in (("all", 2), ("1pct", 2), ("all", 1)):
                    runs.append(generation(source, ratio, workers))
                    r = runs[-1]
                    print(f"  generate --ratio {ratio:<5} --workers {workers}: {r['wall_s']:6.1f} s wall "
                          f"({int(r['timings']['images_rendered']):,} images corrupted; load {r['loadavg_1min_before']:.1f})")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    summary = {}
    if runs:
        def median(ratio: str, workers: int) -> float:
            return statistics.median(r["wall_s"] for r in runs if r["ratio"] == ratio and r["workers"] == workers)

        summary = {"all_2w_s": median("all", 2), "one_2w_s": median("1pct", 2), "all_1w_s": median("all", 1)}
        summary["all_over_one"] = summary["all_2w_s"] / summary["one_2w_s"]
        summary["speedup_2_workers"] = summary["all_1w_s"] / summary["all_2w_s"]
        # On a machine shared with other jobs the second worker gets little extra CPU, so also state
        # what the stage split of the 1-worker runs (all in one process) predicts for 2 free cores.
        one = [r for r in runs if r["ratio"] == "all" and r["workers"] == 1]
        render = statistics.median(r["timings"]["render"] for r in one)
        serial = statistics.median(r["wall_s"] for r in one) - render
        summary["predicted_speedup_2_free_cores"] = (serial + render) / (serial + render / 2)
        summary["cpu_s_1w"] = statistics.median(r["cpu_s"] for r in one)
        summary["cpu_s_2w"] = statistics.median(r["cpu_s"] for r in runs if r["ratio"] == "all" and r["workers"] == 2)
        print(f"\nmedian wall: --ratio all {summary['all_2w_s']:.1f} s, one ratio {summary['one_2w_s']:.1f} s "
              f"-> {summary['all_over_one']:.2f}x (target <= 1.5x); 1 worker {summary['all_1w_s']:.1f} s "
              f"-> 2 workers {summary['speedup_2_workers']:.2f}x faster (target >= 1.8x)")
        print(f"CPU-s, --ratio all: 1 worker {summary['cpu_s_1w']:.1f}, 2 workers {summary['cpu_s_2w']:.1f}; "
              f"stage split predicts {summary['predicted_speedup_2_free_cores']:.2f}x on 2 free cores")
    from provenance import provenance

    meta = {**provenance(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "corruptions": table, "runs": runs, "summary": summary}, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
