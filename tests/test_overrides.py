"""Overrides declared once (biasbench/overrides.py) and the planned run that carries its resolved config:
a new override is one table row, `--set METHOD.FIELD=V` changes and sweeps a method's own numbers (in the run
id), and a worker trains exactly the config the plan resolved, on exactly the data it was planned with."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from biasbench import overrides
from biasbench.baselines import configure
from biasbench.errors import UserError
from biasbench.launch.grid import SweepSpec, expand
from helpers import assert_one_line_error, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ONE = Decimal("0.01")


def test_a_new_override_is_one_row_in_the_table(monkeypatch, capsys):
    from biasbench.cli import main

    row = overrides.Override("weight_decay", "--weight-decay", "override the profile's weight decay", float, "W",
                             check=lambda v: None, field="weight_decay")
    monkeypatch.setattr(overrides, "OVERRIDES", overrides.OVERRIDES + (row,))
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--weight-decay W" in capsys.readouterr().out  # argparse is built from the table
    base = configure("erm", "cmnist", ONE, 41, "cpu", 1000)
    wd = configure("erm", "cmnist", ONE, 41, "cpu", 1000, weight_decay=0.5)
    assert wd.protocol.weight_decay == 0.5 and base.protocol.weight_decay == 1e-4  # it reaches the config...
    assert wd.variant() == "weight_decay=0.5" and wd.run_id("f") != base.run_id("f")  # ...and the run id
    assert wd.to_dict()["protocol"]["weight_decay"] == 0.5


def test_every_row_not_given_adds_nothing_to_a_config():
    plain = configure("reweighted_erm", "cmnist", ONE, 41, "cpu", 1000)
    given = {o.name: o.default for o in overrides.OVERRIDES}
    assert configure("reweighted_erm", "cmnist", ONE, 41, "cpu", 1000, **given) == plain
    assert plain.overrides == {}


def test_set_changes_a_methods_own_number_and_its_run_id():
    base = configure("lff", "cmnist", ONE, 41, "cpu", 1000)
    half = configure("lff", "cmnist", ONE, 41, "cpu", 1000, sets={"q": "0.5"})
    assert base.method_params()["q"] == 0.7 and half.method_params()["q"] == 0.5
    assert half.overrides == {"lff.q": 0.5} and half.variant() == "lff.q=0.5"
    assert half.run_id("f") != base.run_id("f")
    same = configure("lff", "cmnist", ONE, 41, "cpu", 1000, sets={"q": "0.7"})  # the method's own value: same run
    assert same.run_id("f") == base.run_id("f") and same.overrides == {}


def test_set_on_a_per_ratio_table_sets_this_runs_value():
    base = configure("disent", "cmnist", ONE, 41, "cpu", 1000)
    name, value = next((k, v) for k, v in base.method_params().items() if isinstance(v, float))
    changed = configure("disent", "cmnist", ONE, 41, "cpu", 1000, sets={name: str(value * 2)})
    assert changed.method_params()[name] == value * 2 and changed.overrides == {f"disent.{name}": value * 2}


@pytest.mark.parametrize("text,needle", [
    ("lff.nope=1", "lff has no parameter 'nope' (its parameters: q, ema_alpha)"),
    ("erm.q=1", "erm is not among the methods run"),
    ("lffq=1", "--set takes METHOD.FIELD=VALUE"),
    ("lff.q=", "--set takes METHOD.FIELD=VALUE"),
])
def test_bad_set_is_one_line(text, needle):
    from biasbench.methods import get

    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        overrides.parse_sets([text], {"lff": get("lff")})


def test_bad_set_value_is_one_line_from_the_cli(capsys, tmp_path):
    code, _, err = run(capsys, "run", "--method", "lff", "--set", "lff.q=abc", "--profile", "cpu", "--device", "cpu",
                       "--ratio", "1pct", "--seeds", "1", "--data-dir", str(tmp_path), "--results", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--set lff.q takes a number, got 'abc'")
    code, _, err = run(capsys, "run", "--method", "erm", "--set", "erm.q=1", "--profile", "cpu", "--device", "cpu",
                       "--ratio", "1pct", "--data-dir", str(tmp_path))
    assert_one_line_error(code, err, "erm has no parameter 'q' (it has none)")
    assert not (tmp_path / "cmnist").exists()  # refused before any generation


def test_a_sweep_over_set_values_plans_one_run_per_value(cmnist_root, tmp_path):
    spec = SweepSpec(methods=["erm", "lff"], datasets=["cmnist"], ratios=[ONE], n_seeds=2, profile="cpu",
                     data_root=cmnist_root, results=tmp_path, overrides={"steps": 2},
                     sets={"lff": {"q": ("0.5", "0.7", "0.9")}})
    plan = expand(spec)
    lff = [r for r in plan.runs if r.config.method == "lff"]
    assert len([r for r in plan.runs if r.config.method == "erm"]) == 2 and len(lff) == 3 * 2
    assert sorted({r.config.method_params()["q"] for r in lff}) == [0.5, 0.7, 0.9]
    assert {r.label for r in lff if r.config.seed == 41} == {
        "cmnist 1pct lff lff.q=0.5 s41", "cmnist 1pct lff s41", "cmnist 1pct lff lff.q=0.9 s41"}
    assert all(r.run_id == r.config.run_id(r.fingerprint) for r in plan.runs)


def test_a_worker_trains_the_planned_config_and_refuses_other_data(cmnist_root, tmp_path):
    from biasbench.runner import execute

    spec = SweepSpec(methods=["lff"], datasets=["cmnist"], ratios=[ONE], n_seeds=1, profile="cpu",
                     data_root=cmnist_root, results=tmp_path, overrides={"steps": 2, "eval_every": 2},
                     sets={"lff": {"q": ("0.5",)}})
    planned = expand(spec).runs[0]
    forged = dataclasses.replace(planned, fingerprint="0" * 64)
    with pytest.raises(UserError, match="is not the one the run was planned with"):
        execute(forged, __import__("torch").device("cpu"))
    assert not list((tmp_path / "runs").glob("*.json")) if (tmp_path / "runs").exists() else True
    record = execute(planned, __import__("torch").device("cpu"))
    stored = json.loads((tmp_path / "runs" / f"{planned.run_id}.json").read_text())
    assert record["run_id"] == stored["run_id"] == planned.run_id
    assert stored["config"]["method_params"]["q"] == 0.5 and stored["variant"] == "eval_every=2,lff.q=0.5,steps=2"
    assert stored["config"] == planned.config.to_dict()


def test_methods_lists_what_set_can_change(capsys):
    from biasbench.cli import main

    assert main(["methods", "--profile", "disent"]) == 0
    out = capsys.readouterr().out
    assert "lff.q = 0.7" in out and "jtt.upweight = 100.0" in out
    assert "groupdro (GroupDRO): uses bias labels" in out and "rest (REST): uses bias labels, --beta, --density" in out


def test_output_into_a_closed_pipe_is_not_a_traceback(monkeypatch):
    from biasbench.cli import main

    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["methods"]) == 0
