"""`biasbench budget`: accuracy against training budget, from runs at each budget or read from longer ones."""

from __future__ import annotations

import json

import pytest

from biasbench.cli import main
from biasbench.results import budget


def record(method: str, seed: int, steps: int, valid: list[float], test: list[float]) -> dict:
    """A run with one evaluation per 10 steps; `valid`/`test` are unbiased accuracies in [0, 1]."""
    history = [{"step": 10 * (i + 1), "valid": {"unbiased": v}, "test": {"unbiased": t}}
               for i, (v, t) in enumerate(zip(valid, test))]
    assert history[-1]["step"] == steps
    variant = "" if steps == 20 else f"steps={steps}"
    return {"run_id": f"{method}-{seed}-{steps}", "method": method, "dataset": "cmnist", "ratio": "1pct",
            "profile": "cpu", "seed": seed, "variant": variant, "history": history,
            "config": {"steps": steps, "density": None, "protocol": {"selection_metric": "unbiased",
                                                                       "headline": "unbiased"}}}


RECORDS = [
    # ERM: one 40-step run per seed; the 20-step cells are read from them at valid@20
    record("erm", 41, 40, [0.5, 0.6, 0.55, 0.7], [0.40, 0.50, 0.45, 0.60]),
    record("erm", 42, 40, [0.5, 0.4, 0.80, 0.6], [0.30, 0.20, 0.70, 0.50]),
    # RigL depends on its length: only its own runs count, and a 40-step run says nothing about 20
    record("rigl", 41, 20, [0.9, 0.8], [0.35, 0.30]),
    record("rigl", 41, 40, [0.1, 0.2, 0.3, 0.4], [0.65, 0.70, 0.75, 0.80]),
]


def test_cells_come_from_runs_at_the_budget_or_from_longer_runs_of_a_length_free_method():
    t = budget.table(RECORDS, "cmnist", "1pct", ["erm", "rigl"], [20, 40])
    cells = {(r["method"], r["budget"]): r for r in t.to_dict("records")}
    assert cells[("erm", 20)]["test_unbiased_mean"] == pytest.approx(40.0)  # seeds: 50 (step 20) and 30 (step 10)
    assert cells[("erm", 20)]["source"] == "read from 40-step runs" and cells[("erm", 20)]["n_seeds"] == 2
    assert cells[("erm", 40)]["test_unbiased_mean"] == pytest.approx(65.0) and cells[("erm", 40)]["source"] == "runs"
    assert cells[("rigl", 20)]["test_unbiased_mean"] == pytest.approx(35.0) and cells[("rigl", 20)]["n_seeds"] == 1
    assert cells[("rigl", 40)]["test_unbiased_mean"] == pytest.approx(80.0)
    assert budget.rankings(t) == {20: ["erm", "rigl"], 40: ["rigl", "erm"]}


def test_the_command_writes_table_markdown_and_plot(tmp_path, capsys):
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    for r in RECORDS:
        (results / "runs" / f"{r['run_id']}.json").write_text(json.dumps({"format": "biasbench-run/1", **r}))
    out = tmp_path / "lb"
    assert main(["budget", "--results", str(results), "--methods", "erm", "RigL", "--budgets", "20", "40",
                 "--out", str(out), "--name", "b"]) == 0
    printed = capsys.readouterr().out
    assert "| erm | 40.0 ± 14.1 (n=2)* | 65.0 ± 7.1 (n=2) |" in printed
    assert "- 40 steps: rigl > erm" in printed  # 80.0 (one seed) against 65.0 ± 7.1
    assert "- 20 steps: erm ≈ rigl" in printed  # 40.0 ± 14.1 against 35.0: 5 points, within the spread
    assert (out / "b.png").stat().st_size > 1000 and "b.png" in (out / "b.md").read_text()
    assert (out / "b.csv").read_text().splitlines()[0].startswith("dataset,ratio,method,budget")
    assert (out / "b.csv").read_text().splitlines()[0].endswith(",selection_labels")
    assert "the selection reads valid: class+bias labels" in (out / "b.md").read_text()
    drawn = budget.plot(budget.table(RECORDS, "cmnist", "1pct", ["erm"], [20, 40]), tmp_path / "x.png")
    assert drawn == {"erm": [(20, pytest.approx(40.0)), (40, pytest.approx(65.0))]}


def test_no_runs_is_one_line(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    assert main(["budget", "--results", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no runs of" in err


def test_seeds_restricts_every_cell_to_the_same_seeds(tmp_path, capsys):
    t = budget.table(RECORDS, "cmnist", "1pct", ["erm"], [20, 40], seeds=[42])
    assert t["n_seeds"].tolist() == [1, 1] and t["seeds"].tolist() == ["42", "42"]
    assert t["test_unbiased_mean"].tolist() == pytest.approx([30.0, 70.0])  # seed 42: valid@20 at step 10; 40 at 30
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    for r in RECORDS:
        (results / "runs" / f"{r['run_id']}.json").write_text(json.dumps({"format": "biasbench-run/1", **r}))
    assert main(["budget", "--results", str(results), "--methods", "erm", "--budgets", "20", "40", "--seeds", "41",
                 "--out", str(tmp_path / "lb"), "--name", "b"]) == 0
    printed = capsys.readouterr().out
    assert "--budgets 20 40 --seeds 41 --out" in printed and "| erm | 50.0 (n=1)* | 60.0 (n=1) |" in printed


def test_ranking_marks_ties_within_the_spread_and_names_the_pairs_that_swap():
    t = budget.table(RECORDS, "cmnist", "1pct", ["erm", "rigl"], [20, 40])
    # 20 steps: erm 40.0 ± 14.1, rigl 35.0 (one seed): 5 points apart, within erm's spread
    # 40 steps: rigl 80.0, erm 65.0 ± 7.1: 15 points apart, ordered
    assert budget.ranking_text(t) == {20: "erm ≈ rigl", 40: "rigl > erm"}
    assert budget.order_changes(t) == [("erm", "rigl", [40])]
    stable = budget.table(RECORDS, "cmnist", "1pct", ["erm", "rigl"], [40])
    assert budget.order_changes(stable) == []
    text = budget.markdown(t, "cmd")
    assert "- 20 steps: erm ≈ rigl" in text and "rigl ahead of erm at 40 steps." in text


def test_an_order_change_names_the_budgets_that_break_the_usual_order():
    rows = [{"method": m, "budget": b, "test_unbiased_mean": v, "test_unbiased_std": 0.1}
            for m, b, v in [("erm", 1, 50), ("erm", 2, 60), ("erm", 3, 70), ("rigl", 1, 55), ("rigl", 2, 58),
                            ("rigl", 3, 75), ("rest", 1, 90), ("rest", 2, 91), ("rest", 3, 92)]]
    import pandas as pd

    assert budget.order_changes(pd.DataFrame(rows)) == [("rigl", "erm", [2])]
