"""What researchers paste and look at: label-free selection rules and the labels every table says a rule
read, the LaTeX table, the per-group heatmap, the run summary's columns, and the optional TensorBoard/W&B
mirror (which must leave the run record and id alone)."""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biasbench.errors import UserError
from biasbench.results import groups, leaderboard, selection, sinks
from helpers import assert_one_line_error, run, seeds

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboard" / "runs" / "cmnist-cpu" / "runs"


def _groups(per_class: list[float], n: int = 10) -> dict:
    """Label x 2 bias groups whose row sums give the per-class accuracy (bias columns split 50/50)."""
    correct = [[round(a * n / 2), round(a * n / 2)] for a in per_class]
    return {"correct": correct, "total": [[n // 2, n // 2] for _ in per_class]}


def _entry(step: int, unbiased: float, accuracy: float, per_class: list[float]) -> dict:
    valid = {"unbiased": unbiased, "accuracy": accuracy, "groups": _groups(per_class)}
    return {"step": step, "valid": valid, "test": {"unbiased": unbiased / 2, "accuracy": accuracy / 2}}


def test_label_free_rules_choose_on_class_labels_only():
    # step 1: best unbiased; step 2: best plain accuracy; step 3: best worst class
    record = {"method": "erm", "config": {"protocol": {"selection_metric": "unbiased", "headline": "unbiased"}},
              "history": [_entry(1, 0.9, 0.5, [1.0, 0.0]), _entry(2, 0.5, 0.9, [1.0, 0.2]),
                          _entry(3, 0.4, 0.6, [0.6, 0.6]), _entry(4, 0.4, 0.6, [0.6, 0.6])]}
    assert selection.choose(record, "valid")["step"] == 1
    assert selection.choose(record, "valid_accuracy")["step"] == 2
    assert selection.choose(record, "valid_worst_class")["step"] == 3  # the first of equal scores
    assert selection.worst_class(record["history"][1]["valid"]) == pytest.approx(0.2)
    # the bias columns do not matter: move every correct count of a class into one bias column
    moved = copy.deepcopy(record)
    for e in moved["history"]:
        e["valid"]["groups"]["correct"] = [[sum(row), 0] for row in e["valid"]["groups"]["correct"]]
    assert selection.choose(moved, "valid_worst_class")["step"] == 3


@pytest.mark.parametrize("rule,metric,labels", [
    ("valid", "unbiased", "valid: class+bias"), ("valid", "worst_group", "valid: class+bias"),
    ("valid", "accuracy", "valid: class"), ("valid@100", "unbiased", "valid: class+bias"),
    ("valid_worst_class", "unbiased", "valid: class"), ("valid_accuracy", "unbiased", "valid: class"),
    ("oracle", "unbiased", "test: class+bias"), ("final", "unbiased", "none"), ("last3", "unbiased", "none"),
])
def test_every_rule_says_which_labels_it_reads(rule, metric, labels):
    assert selection.labels_read(selection.get(rule).name, metric) == labels


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed cmnist-cpu records")
def test_committed_records_read_under_a_label_free_rule_say_so():
    records = [json.loads(p.read_text()) for p in sorted(COMMITTED.glob("*.json"))][:30]
    table = leaderboard.aggregate(leaderboard.runs_table(records, "valid_worst_class")[0], "valid_worst_class")
    assert set(table["selection_labels"]) == {"valid: class"}
    assert "model selection: valid_worst_class (labels it reads: valid: class)" in leaderboard.markdown(table)
    valid = leaderboard.aggregate(leaderboard.runs_table(records, "valid")[0], "valid")
    assert set(valid["selection_labels"]) == {"valid: class+bias"}
    assert list(valid.columns[5:8]) == ["selection", "selection_labels", "n_seeds"]


def _table(selection_rule: str = "valid") -> pd.DataFrame:
    records = (seeds("erm", "cmnist", "1pct", [50.0, 54.0]) + seeds("rest", "cmnist", "1pct", [88.0, 90.0])
               + seeds("erm", "cmnist", "5pct", [86.0, 86.5]) + seeds("rest", "cmnist", "5pct", [80.0, 82.0]))
    return leaderboard.aggregate(leaderboard.runs_table(records, selection_rule)[0], selection_rule)


def test_latex_is_booktabs_with_mean_std_and_the_best_of_each_column_bold():
    tex = leaderboard.latex(_table())
    for needle in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{llrr}",
                   "Method & Bias labels & 1pct & 5pct \\\\",
                   "erm & no & 52.0 $\\pm$ 2.8 & \\textbf{86.2 $\\pm$ 0.4} \\\\",
                   "rest & yes & \\textbf{89.0 $\\pm$ 1.4} & 81.0 $\\pm$ 1.4 \\\\",
                   "model selection: valid (reads valid: class+bias labels)"):
        assert needle in tex, needle
    assert tex.count("\\textbf") == 2 and "reweighted\\_erm" not in tex
    assert leaderboard._tex("reweighted_erm 5%") == "reweighted\\_erm 5\\%"


def test_leaderboard_latex_flag_writes_the_tex_file(tmp_path, capsys):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    for r in seeds("erm", "cmnist", "1pct", [50.0, 54.0]):
        (runs / f"{r['run_id']}.json").write_text(json.dumps(r))
    code, out, _ = run(capsys, "leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "lb"),
                       "--latex")
    assert code == 0 and (tmp_path / "lb" / "leaderboard.tex").read_text().count("\\toprule") == 1
    assert not (tmp_path / "lb2").exists()
    code, _, _ = run(capsys, "leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "lb2"))
    assert code == 0 and not (tmp_path / "lb2" / "leaderboard.tex").exists()  # only when asked


def test_run_summary_columns_are_at_least_as_wide_as_their_names():
    text = leaderboard.summary_text(_table(), sparse=True)
    head, *rows = text.splitlines()
    for name in ("ratio", "density", *leaderboard.METRICS):
        assert f" {name} " in f" {head} ", name  # every name stands alone: no two run together
    assert "accuracymin_aligned_conflicting" not in head
    assert head.split() == ["ratio", "density", *leaderboard.METRICS]
    assert rows[0].split()[:4] == ["1pct", "-", "52.0", "±"]
    ends = [len(line) for line in text.splitlines()]
    assert len(set(ends)) == 1  # right-aligned columns: every line ends under the last header


def test_group_accuracy_matrix_mean_over_seeds_and_text(tmp_path):
    def rec(seed, a):
        g = {"correct": [[a, 0], [1, 2]], "total": [[4, 0], [2, 2]]}
        e = {"step": 1, "valid": {"unbiased": 0.5, "groups": g}, "test": {"unbiased": 0.5, "groups": g}}
        return {"run_id": f"r{seed}", "method": "erm", "history": [e],
                "config": {"protocol": {"selection_metric": "unbiased", "headline": "unbiased"}}}

    m = groups.mean_matrix([rec(41, 4), rec(42, 2)], "valid", "test")
    assert m[0, 0] == pytest.approx(75.0) and np.isnan(m[0, 1]) and m[1].tolist() == [50.0, 100.0]
    assert groups.text(m, ["0", "1"], ["red", "green"]).splitlines()[1].split() == ["0", "75.0", "-"]
    with pytest.raises(UserError, match="no per-group counts"):
        groups.mean_matrix([rec(41, 4)], "last3", "test")
    out = groups.plot(m, ["0", "1"], ["red", "green"], "t", tmp_path / "g.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed cmnist-cpu records")
def test_plot_groups_on_the_committed_records(tmp_path, capsys):
    out = tmp_path / "g.png"
    code, text, _ = run(capsys, "plot", "groups", "--results", str(COMMITTED.parent), "--ratio", "1pct",
                        "--method", "erm", "--out", str(out))
    lines = text.splitlines()
    assert code == 0 and out.is_file() and "mean over seeds 41 42 43" in lines[0]
    diagonal = [float(lines[2 + i].split()[1 + i]) for i in range(10)]
    off = [float(v) for i in range(10) for j, v in enumerate(lines[2 + i].split()[1:]) if j != i]
    assert min(diagonal) > 90 and np.mean(off) < 60  # ERM at 1 %: the colour, learned
    code, _, err = run(capsys, "plot", "groups", "--results", str(COMMITTED.parent), "--ratio", "1pct",
                       "--method", "erm", "--seed", "7", "--out", str(out))
    assert_one_line_error(code, err, "no runs of erm on cmnist 1pct seed 7")


# ---- the optional sinks ----------------------------------------------------------------------------

RECORD = {"run_id": "cmnist-1pct-erm-abc", "method": "erm", "dataset": "cmnist", "ratio": "1pct", "seed": 41,
          "profile": "cpu", "config": {"steps": 20},
          "history": [{"step": 10, "lr": 0.01, "train_loss": 1.5, "valid": {"unbiased": 0.5, "groups": {}},
                       "test": {"unbiased": 0.4}},
                      {"step": 20, "lr": 0.01, "train_loss": 1.0, "valid": {"unbiased": 0.6, "groups": {}},
                       "test": {"unbiased": 0.45}}]}


def test_tensorboard_sink_mirrors_the_history_once(monkeypatch, tmp_path):
    calls = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("dir", Path(log_dir).name))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def close(self):
            calls.append("close")

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    before = json.dumps(RECORD, sort_keys=True)
    assert sinks.mirror(RECORD, "tensorboard", tmp_path) is True
    assert ("dir", "cmnist-1pct-erm-abc") in calls and ("valid/unbiased", 0.6, 20) in calls
    assert ("test/unbiased", 0.4, 10) in calls and ("train_loss", 1.0, 20) in calls and calls[-1] == "close"
    assert not any(c[0].endswith("groups") for c in calls if isinstance(c, tuple))
    assert json.dumps(RECORD, sort_keys=True) == before  # the record is read, never changed
    n = len(calls)
    assert sinks.mirror(RECORD, "tensorboard", tmp_path) is False and len(calls) == n


def test_wandb_sink_logs_offline(monkeypatch, tmp_path):
    seen = {}

    class Run:
        def log(self, data, step):
            seen.setdefault("steps", []).append((step, data["valid/unbiased"]))

        def finish(self):
            seen["finished"] = True

    def init(**kw):
        seen["init"] = kw
        return Run()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    assert sinks.mirror(RECORD, "wandb", tmp_path)
    assert seen["init"]["mode"] == "offline" and seen["init"]["name"] == RECORD["run_id"]
    assert seen["steps"] == [(10, 0.5), (20, 0.6)] and seen["finished"]


def test_a_missing_sink_is_a_one_line_error_before_anything_trains(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    code, out, err = run(capsys, "run", "--method", "erm", "--ratio", "1pct", "--seeds", "1", "--profile", "cpu",
                         "--device", "cpu", "--log", "wandb", "--data-dir", str(tmp_path / "data"),
                         "--results", str(tmp_path / "results"))
    assert_one_line_error(code, err, "--log wandb needs the wandb package", "pip install wandb")
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_run_id_does_not_depend_on_the_sink(cmnist_root, monkeypatch, tmp_path, capsys):
    """The same run with and without --log: one record, the same run id; the second call only mirrors."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_NullWriter))
    common = ["run", "--method", "erm", "--ratio", "1pct", "--seeds", "1", "--profile", "cpu", "--device", "cpu",
              "--steps", "4", "--eval-every", "2", "--data-dir", str(cmnist_root), "--results", str(tmp_path / "results")]
    code, _, err = run(capsys, *common)
    assert code == 0, err
    (path,) = list((tmp_path / "results" / "runs").glob("*.json"))
    before = path.read_bytes()
    code, out, err = run(capsys, *common, "--log", "tensorboard")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "results" / "runs").glob("*.json")] == [path.name]
    assert path.read_bytes() == before and "tensorboard: mirrored 1 run(s)" in out
    assert _NullWriter.scalars and {s for _, _, s in _NullWriter.scalars} == {2, 4}


class _NullWriter:
    scalars: list = []

    def __init__(self, log_dir):
        pass

    def add_scalar(self, tag, value, step):
        _NullWriter.scalars.append((tag, value, step))

    def close(self):
        pass
