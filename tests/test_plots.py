"""`biasbench plot density`: aggregation over seeds per density, the PNG, and its errors."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from PIL import Image

from biasbench.results import plots
from biasbench.results.leaderboard import runs_table
from conftest import cli


def record(method: str, seed: int, density: float | None, unbiased: float, conflicting: float, variant: str = "") -> dict:
    metrics = {"unbiased": unbiased, "conflicting": conflicting, "aligned": 0.99, "worst_group": 0.0, "accuracy": 0.5}
    entry = {"step": 600, "valid": metrics, "test": metrics}
    return {
        "format": "biasbench-run/1", "run_id": f"{method}-{seed}-{density}-{variant}", "method": method,
        "dataset": "cmnist", "ratio": "1pct", "seed": seed, "profile": "cpu", "variant": variant,
        "config": {"protocol": {"headline": "unbiased"}, "density": density},
        "data": {"fingerprint": "f" * 64}, "best_valid": entry, "final": entry, "best_test_oracle": entry,
        "accounting": {"density": density if density is not None else 1.0},
    }


def records() -> list[dict]:
    out = []
    for seed, shift in ((41, 0.0), (42, 0.02), (43, 0.04)):
        out.append(record("erm", seed, None, 0.50 + shift, 0.45 + shift))
        out.append(record("erm", seed, None, 0.10, 0.10, variant="steps=10"))  # another budget: left out
        for d in (0.001, 0.05, 0.5):
            out.append(record("rest", seed, d, 0.60 + d / 10 + shift, 0.55 + shift, variant=f"density={d}"))
    out.append(record("rigl", 41, 0.05, 0.40, 0.30, variant="density=0.05"))
    return out


def test_density_table_is_mean_and_std_over_seeds_per_density():
    runs, warnings = runs_table(records(), "valid")
    assert not warnings
    table = plots.density_table(runs, "cmnist", "1pct", "cpu")
    rest = table[table["method"] == "rest"].set_index("density")
    assert list(rest.index) == [0.001, 0.05, 0.5] and set(rest["n_seeds"]) == {3}
    assert rest.loc[0.5, "unbiased_mean"] == pytest.approx(100 * (0.65 + 0.02))
    assert rest.loc[0.5, "unbiased_std"] == pytest.approx(2.0)
    erm = table[table["method"] == "erm"]
    assert len(erm) == 1 and erm["density"].iloc[0] == 1.0 and erm["unbiased_mean"].iloc[0] == pytest.approx(52.0)
    rigl = table[table["method"] == "rigl"]
    assert rigl["n_seeds"].iloc[0] == 1 and math.isnan(rigl["unbiased_std"].iloc[0])


@pytest.mark.slow
def test_plot_density_cli_writes_a_png_and_refuses_what_it_cannot_plot(tmp_path):
    runs = tmp_path / "res" / "runs"
    runs.mkdir(parents=True)
    for r in records():
        (runs / f"{r['run_id']}.json").write_text(json.dumps(r))
    out = tmp_path / "d.png"
    done = cli("plot", "density", "--ratio", "1pct", "--results", str(tmp_path / "res"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 300
    assert "rest" in done.stdout and "0.001" in done.stdout
    for args, message in [
        (("--ratio", "2pct"), "no runs of cmnist 2pct"),
        (("--ratio", "1pct", "--profile", "paper"), "under profile 'paper'"),
        (("--ratio", "nope"), "ratio"),
    ]:
        bad = cli("plot", "density", "--results", str(tmp_path / "res"), *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
    only_dense = pd.DataFrame([{"method": "erm", "density": 1.0, "n_seeds": 1, "unbiased_mean": 1, "unbiased_std": 0,
                                "conflicting_mean": 1, "conflicting_std": 0}])
    with pytest.raises(Exception, match="no sparse runs"):
        plots.plot_density(only_dense, "t", tmp_path / "x.png")


def test_leaderboard_markdown_folds_a_density_sweep_into_one_table():
    from biasbench.results.leaderboard import aggregate, markdown

    from biasbench.runconfig import default_density

    chosen = default_density("cpu", "cmnist", "rest", "1pct")
    recs = records() + [record("rest", 41, chosen, 0.70, 0.60)]  # REST at its default density: variant ''
    runs, _ = runs_table(recs)
    md = markdown(aggregate(runs))
    titles = [line for line in md.splitlines() if line.startswith("## ")]
    assert titles == ["## cmnist · profile `cpu`", "## cmnist · profile `cpu` · `steps=10`",
                      "## cmnist · profile `cpu` · density sweep"]  # not one section per density
    rows = [line.split(" | ") for line in md.split("density sweep")[1].splitlines() if line.startswith("| 1pct")]
    # method, bias labels, n, density: sorted, the default-density row included
    expected = sorted([("rest", "yes", "3", "0.001"), ("rest", "yes", "3", "0.05"), ("rest", "yes", "3", "0.5"),
                       ("rest", "yes", "1", f"{chosen:g}"), ("rigl", "no", "1", "0.05")],
                      key=lambda r: (r[0], float(r[3])))  # wherever the profile's default density falls
    assert [(r[1], r[2], r[3], r[10]) for r in rows] == expected
    assert rows[0][4] == "62.0 ± 2.0"  # seeds at 60.01, 62.01, 64.01 (density 0.001): mean ± std


def test_leaderboard_draws_accuracy_against_ratio_and_cost_with_the_aggregated_values(tmp_path, capsys):
    import json as _json

    from biasbench.cli import main
    from biasbench.runconfig import default_density
    from helpers import record

    results = tmp_path / "res"
    (results / "runs").mkdir(parents=True)
    recs = []
    for method, base in (("erm", 40.0), ("rest", 60.0)):
        for ratio, bump in (("0.5pct", 0.0), ("1pct", 10.0), ("5pct", 30.0)):
            for seed, noise in zip((41, 42), (-1.0, 1.0)):
                dens = default_density("cpu", "cmnist", "rest", ratio) if method == "rest" else None
                r = record(method, "cmnist", ratio, seed, base + bump + noise, density=dens)
                r["run_id"] += f"-{ratio}"
                r["accounting"]["train_flops"] = 1e12 if method == "erm" else 1e11
                recs.append(r)
    for r in recs:
        (results / "runs" / f"{r['run_id']}.json").write_text(_json.dumps(r))
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "lb"), "--name", "t"]) == 0
    md = (tmp_path / "lb" / "t.md").read_text()
    assert "![cmnist cpu: ratio](t-cmnist-cpu-ratio.png)" in md and "![cmnist cpu: cost](t-cmnist-cpu-cost.png)" in md
    assert (tmp_path / "lb" / "t-cmnist-cpu-ratio.png").stat().st_size > 1000

    from biasbench.results import leaderboard, plots

    table = leaderboard.aggregate(leaderboard.runs_table(recs)[0])
    part = plots.default_rows(table, "cmnist", "cpu")
    drawn = plots.plot_vs_ratio(part, "t", tmp_path / "r.png")
    assert drawn["erm"][0] == [0.5, 1.0, 5.0] and drawn["erm"][1] == pytest.approx([40.0, 50.0, 70.0])
    assert drawn["rest"][1] == pytest.approx([60.0, 70.0, 90.0])
    cost = plots.plot_vs_cost(part, "t", tmp_path / "c.png")
    assert cost["rest"][0] == [1e11] * 3 and cost["erm"][1] == pytest.approx([40.0, 50.0, 70.0])
