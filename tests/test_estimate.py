"""The plan's time estimate: runs to do costed at the median of finished runs like them."""

from types import SimpleNamespace

from biasbench.results.estimate import estimate, run_seconds


def _record(method, seconds, *, dataset="cmnist", profile="disent", steps=50_000, device="cpu", evals=0.0):
    return {"config": {"method": method, "dataset": dataset, "profile": profile, "steps": steps},
            "backend": {"device_type": device}, "train_seconds": seconds, "eval_seconds": evals}


def _todo(method, n=1, *, dataset="cmnist", profile="disent", steps=50_000):
    return [SimpleNamespace(method=method, dataset=dataset, profile=profile, steps=steps)] * n


def test_runs_are_costed_at_the_median_of_their_peers():
    records = [_record("erm", 400, evals=20), _record("erm", 500, evals=20), _record("erm", 3000, evals=20),
               _record("lff", 700, evals=80)]
    est = estimate(_todo("erm", 3) + _todo("lff", 2), records, "cpu")
    assert est.costed == 5 and est.uncosted == {}
    assert est.medians == {"erm": 520.0, "lff": 780.0}
    assert est.seconds == 3 * 520 + 2 * 780
    assert est.describe(2) == ("estimate: 5 runs x the median finished run like them (erm 9 min, lff 13 min) = "
                               "52 min of run time, about 26 min at 2 at a time")
    assert est.describe(1).endswith("= 52 min of run time")


def test_other_budgets_profiles_and_devices_are_not_peers():
    records = [_record("erm", 500), _record("erm", 5, steps=600), _record("erm", 50, profile="cpu"),
               _record("erm", 60, device="cuda"), _record("erm", 70, dataset="cifar10c")]
    assert estimate(_todo("erm"), records, "cpu").seconds == 500
    assert estimate(_todo("erm"), records, "cuda").seconds == 60
    assert estimate(_todo("erm", steps=600), records, "cpu").seconds == 5


def test_runs_with_no_peer_are_counted_not_guessed():
    est = estimate(_todo("erm", 2) + _todo("groupdro", 3) + _todo("jtt"), [_record("erm", 500)], "cpu")
    assert (est.costed, est.seconds, est.uncosted) == (2, 1000, {"groupdro": 3, "jtt": 1})
    assert est.describe(4).endswith("; 4 runs (groupdro, jtt) have no finished run like them to go by")
    only = estimate(_todo("jtt"), [], "cpu")
    assert only.describe(2) == "estimate: 1 run (jtt) have no finished run like them to go by"
    assert estimate([], [_record("erm", 500)], "cpu").describe(2) is None


def test_several_datasets_name_each_median():
    records = [_record("erm", 500), _record("erm", 7200, dataset="cifar10c")]
    est = estimate(_todo("erm") + _todo("erm", dataset="cifar10c"), records, "cpu")
    assert est.medians == {"erm cmnist/disent/50000 steps": 500, "erm cifar10c/disent/50000 steps": 7200}
    assert "2.1 h of run time" in est.describe(1)


def test_records_without_times_are_skipped():
    assert run_seconds({"train_seconds": 10.0, "eval_seconds": 2}) == 12.0
    for bad in ({}, {"train_seconds": "10", "eval_seconds": 1}, {"train_seconds": -1, "eval_seconds": 1},
                {"train_seconds": 10}):
        assert run_seconds(bad) is None
    broken = [{"train_seconds": 1, "eval_seconds": 1}, {**_record("erm", 900), "backend": None}]
    assert estimate(_todo("erm"), broken, "cpu").seconds == 900  # no config: skipped; no backend: a CPU run
