"""Choosing a sparse method's default density on validation (never on test), and how a run records it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from biasbench.datasets import names as dataset_names
from biasbench.protocol import DENSITY_PRIOR, PROFILES, REST_PUBLISHED_DENSITY, protocol_for
from biasbench.results.density import choose, scores
from biasbench.baselines import configure
from helpers import assert_one_line_error, run


def rec(method, density, seed, valid, test, variant=None, profile="cpu"):
    entry = {"step": 10, "valid": {"unbiased": valid / 100}, "test": {"unbiased": test / 100}}
    return {"format": "biasbench-run/1", "run_id": f"{method}-{density}-{seed}", "method": method, "dataset": "cmnist",
            "ratio": "1pct",
            "profile": profile, "seed": seed, "variant": f"density={density}" if variant is None else variant,
            "config": {"density": density, "protocol": {"selection_metric": "unbiased", "headline": "unbiased"}},
            "best_valid": entry}


def test_the_choice_follows_valid_and_ignores_test():
    records = [rec("rest", 0.05, 41, 80.0, 95.0), rec("rest", 0.05, 42, 82.0, 95.0),  # best on test
               rec("rest", 0.1, 41, 85.0, 70.0), rec("rest", 0.1, 42, 84.0, 70.0),  # best on valid
               rec("rest", 0.5, 41, 84.5, 99.0, variant="steps=10"),  # another budget: not the sweep
               rec("rest", 0.9, 41, 99.0, 99.0, profile="paper")]  # another profile
    table = scores(records, "cmnist", "1pct", "cpu")
    assert [(s.density, s.n_seeds) for s in table] == [(0.05, 2), (0.1, 2)]
    best = choose(table, "rest")
    assert best.density == 0.1 and best.valid_mean == pytest.approx(84.5) and best.test_mean == pytest.approx(70.0)


def test_ties_go_to_the_lower_density_and_densities_are_compared_on_shared_seeds():
    records = [rec("rigl", 0.2, 41, 50.0, 0.0), rec("rigl", 0.1, 41, 50.0, 0.0), rec("rigl", 0.1, 42, 40.0, 0.0),
               rec("rigl", 0.9, 41, 60.0, 0.0), rec("rigl", 0.9, 42, 10.0, 0.0), rec("rigl", 0.9, 43, 10.0, 0.0)]
    table = scores(records, "cmnist", "1pct", "cpu")
    best = choose(table, "rigl")  # on seed 41, the one all three densities have: 0.9 (60), not its 3-seed mean
    assert best.density == 0.9 and best.valid_mean == pytest.approx(60.0) and best.n_seeds == 1
    assert choose(table, "rigl", min_seeds=2) is None  # they share one seed only
    assert choose(table, "rest") is None
    tie = scores(records[:2], "cmnist", "1pct", "cpu")
    assert choose(tie, "rigl").density == 0.1


def jtt_rec(t, seed, valid, test, variant=None, method="jtt", **extra):
    record = rec(method, None, seed, valid, test,
                 variant=f"jtt.identify_fraction={t:g}" if variant is None else variant)
    record["config"]["method_params"] = {"identify_fraction": t, "upweight": 100.0, **extra}
    return record


def test_a_methods_own_number_is_chosen_by_the_same_rule_from_its_set_sweep():
    records = [jtt_rec(0.2, 41, 50.0, 99.0, variant=""), jtt_rec(0.2, 42, 52.0, 99.0, variant=""),  # default
               jtt_rec(0.01, 41, 70.0, 10.0), jtt_rec(0.01, 42, 68.0, 10.0),  # best on valid
               jtt_rec(0.05, 41, 70.0, 10.0), jtt_rec(0.05, 42, 68.0, 10.0),  # tied: the higher value loses
               jtt_rec(0.005, 41, 90.0, 90.0, variant="jtt.identify_fraction=0.005,steps=10"),  # another budget
               jtt_rec(0.02, 41, 95.0, 95.0, variant="jtt.upweight=5"),  # another number varied
               jtt_rec(0.1, 41, 99.0, 99.0, method="erm")]  # another method
    table = scores(records, "cmnist", "1pct", "cpu", param="jtt.identify_fraction")
    assert [(s.method, s.density, s.n_seeds) for s in table] == [("jtt", 0.01, 2), ("jtt", 0.05, 2), ("jtt", 0.2, 2)]
    best = choose(table, "jtt")
    assert best.density == 0.01 and best.valid_mean == pytest.approx(69.0) and best.test_mean == pytest.approx(10.0)
    assert scores(records, "cmnist", "1pct", "cpu") == []  # none of them is a density sweep


def test_the_density_command_chooses_a_methods_own_number_and_names_bad_params(tmp_path, capsys):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    for i, r in enumerate([jtt_rec(0.2, 41, 50.0, 90.0, variant=""), jtt_rec(0.01, 41, 70.0, 60.0)]):
        (runs / f"cmnist-1pct-jtt-cpu-s41-{i:012x}.json").write_text(json.dumps(r))
    results = str(tmp_path / "results")
    code, out, err = run(capsys, "density", "--param", "jtt.identify_fraction", "--results", results)
    assert code == 0, err
    assert "jtt: identify_fraction 0.01 (best mean valid 70.00 over 1 seeds" in out
    for param, words in [("jtt.T", "jtt has no number 'T'"), ("jtt", "expected 'density' or METHOD.FIELD"),
                         ("erm.lr", "erm has no number 'lr' (it has none of its own)"),
                         ("lff.q", "no runs of lff.q of cmnist 1pct under profile 'cpu'")]:
        code, _, err = run(capsys, "density", "--param", param, "--results", results)
        assert_one_line_error(code, err, words)


def test_defaults_are_never_a_published_best_and_runs_record_how_density_was_chosen():
    for name in PROFILES:
        for dataset in dataset_names():
            for method in ("rigl", "rest"):
                cfg = configure(method, dataset, Decimal("0.01"), 41, name, 1000)
                assert cfg.density_rule in ("valid", "prior")
                if cfg.density_rule == "prior":
                    assert cfg.density == DENSITY_PRIOR
    published = configure("rest", "cmnist", Decimal("0.02"), 41, "cpu", 1000, density="rest-published")
    assert published.density == REST_PUBLISHED_DENSITY["cmnist"]["2pct"] == 0.005
    assert published.density_rule == "rest-published" and published.variant() == "density=0.005"
    assert "density_rule" not in published.to_dict()  # a label, not part of the run id
    erm = configure("erm", "cmnist", Decimal("0.01"), 41, "cpu", 1000)
    assert erm.density is None and erm.density_rule is None


def test_density_command_prints_the_choice_and_rejects_an_empty_sweep(tmp_path, capsys):
    results = tmp_path / "res"
    (results / "runs").mkdir(parents=True)
    for r in [rec("rest", 0.05, 41, 80.0, 95.0), rec("rest", 0.1, 41, 85.0, 70.0), rec("mrm", 0.1, 41, 99.0, 99.0)]:
        (results / "runs" / f"{r['run_id']}.json").write_text(json.dumps(r))
    code, out, _ = run(capsys, "density", "--results", str(results))
    assert code == 0 and "rest: density 0.1 (best mean valid 85.00 over 1 seeds" in out and "every density has: 41" in out
    assert "mrm" not in out  # MRM's density is its probe's, not a sweep's
    code, _, err = run(capsys, "density", "--results", str(tmp_path / "empty"))
    assert_one_line_error(code, err, "run a sweep first")


def test_every_leaderboard_row_says_whether_its_method_trains_with_bias_labels():
    from biasbench.results.leaderboard import aggregate, runs_table
    from helpers import record

    methods = {"erm": "no", "reweighted_erm": "yes", "lff": "no", "disent": "no", "mrm": "no", "rigl": "no",
               "rest": "yes"}
    table = aggregate(runs_table([record(m, "cmnist", "1pct", 41, 50.0) for m in methods])[0])
    assert dict(zip(table["method"], table["bias_labels"])) == methods


@pytest.mark.parametrize("profile, store", [("cpu", "cmnist-cpu"), ("disent", "cmnist-disent")])
def test_a_profiles_chosen_densities_are_what_its_committed_sweep_chooses_on_valid(profile, store):
    """The constants in protocol/profiles.py are re-derived from the committed records: a sweep that grows and
    changes its choice makes this fail until the constant (and the runs at it) follow."""
    from conftest import REPO

    from biasbench.results.store import RunStore

    results = REPO / "leaderboard" / "runs" / store
    if not (results / "runs").is_dir():
        pytest.skip(f"no committed {store} records")
    records, _ = RunStore(results).records()
    table = scores(records, "cmnist", "1pct", profile)
    chosen = protocol_for(profile, "cmnist").chosen_density
    assert set(chosen) == {"rigl", "rest"}
    for method, density in chosen.items():
        assert choose(table, method).density == density, method


def test_a_run_at_a_former_default_density_is_read_as_a_density_variant_and_not_counted_twice():
    from biasbench.results.leaderboard import aggregate, runs_table
    from biasbench.runconfig import default_density
    from helpers import record

    chosen = default_density("cpu", "cmnist", "rest", "1pct")
    old_default = record("rest", "cmnist", "1pct", 41, 50.0, density=0.1234)  # variant '' when it ran
    swept = record("rest", "cmnist", "1pct", 41, 70.0, variant=f"density={chosen:g}", density=chosen)
    default = record("rest", "cmnist", "1pct", 41, 70.0, density=chosen)
    table = aggregate(runs_table([old_default, swept, default])[0])
    rows = {r["variant"]: r for r in table.to_dict("records")}
    assert set(rows) == {"", "density=0.1234"}
    assert rows[""]["n_seeds"] == 1 and rows[""]["test_unbiased_mean"] == pytest.approx(70.0)  # one seed 41
