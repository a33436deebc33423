"""`biasbench run` and `biasbench leaderboard` end to end (in-process), and their user errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from biasbench.cli import main
from helpers import assert_one_line_error, run


@pytest.fixture(scope="module")
def data_root(cmnist_root):
    return cmnist_root  # conftest: one shared build


def base(data_root, results, *extra):
    return ["run", "--ratio", "1pct,5pct", "--steps", "3", "--eval-every", "3", "--device", "cpu",
            "--data-dir", str(data_root), "--results", str(results), *extra]


@pytest.fixture(scope="module")
def results(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    for method in ("erm", "reweighted_erm"):
        assert main(base(data_root, out, "--method", method, "--seeds", "2")) == 0
    return out


@pytest.mark.slow
def test_one_record_per_run_with_provenance(results):
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
    assert len(records) == 8  # 2 methods x 2 ratios x 2 seeds
    r = next(r for r in records if r["method"] == "reweighted_erm" and r["ratio"] == "5pct")
    assert r["config"]["beta"] == 80.0 and r["config"]["protocol"]["lr"] == 0.01
    assert r["profile"] == "cpu" and r["variant"] == "eval_every=3,steps=3"
    assert r["seed"] in (41, 42) and len(r["data"]["fingerprint"]) == 64
    for key in ("biasbench_version", "git_commit", "torch_version", "device", "wall_time_s", "images_per_second",
                "history", "final", "best_valid", "best_test_oracle", "params"):
        assert key in r, key
    assert [h["step"] for h in r["history"]] == [3]
    assert set(r["final"]["test"]) >= {"accuracy", "unbiased", "aligned", "conflicting", "worst_group", "groups"}
    assert not list((results / "checkpoints").glob("*"))


@pytest.mark.slow
def test_run_prints_a_ratio_by_metric_table_and_skips_finished_runs(data_root, results, capsys):
    assert main(base(data_root, results, "--method", "erm", "--seeds", "2")) == 0
    out, err = capsys.readouterr()
    assert out.count("finished before, skipped") == 4
    rows = [line for line in out.splitlines() if line.startswith(("1pct", "5pct"))]
    assert len(rows) == 2 and all(line.count("±") == 6 for line in rows)  # one per metric


@pytest.mark.slow
def test_leaderboard_aggregates_over_seeds(results, tmp_path, capsys):
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(table) == 4 and set(table["n_seeds"]) == {2}
    records = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    erm_1 = [r["best_valid"]["test"]["unbiased"] * 100 for r in records if r["method"] == "erm" and r["ratio"] == "1pct"]
    row = table[(table["method"] == "erm") & (table["ratio"] == "1pct")].iloc[0]
    assert row["test_unbiased_mean"] == pytest.approx(sum(erm_1) / 2, abs=1e-3)
    assert row["test_unbiased_std"] == pytest.approx(pd.Series(erm_1).std(), abs=1e-3)
    assert row["selection"] == "valid" and row["profile"] == "cpu"
    for column in ("density", "train_flops", "inference_flops", "params", "dataset_fingerprint", "commits", "devices",
                   "torch", "last_finished"):
        assert column in table.columns
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| erm |" in md and "| reweighted_erm |" in md and "model selection: valid" in md
    provenance = next(line for line in md.splitlines() if line.startswith("Provenance: biasbench"))
    assert all(r['data']['fingerprint'][:12] in provenance for r in records)


@pytest.mark.slow
def test_profile_hash_names_the_recorded_protocol_and_shows_a_mixed_row(results, tmp_path):
    import shutil

    from biasbench.results.leaderboard import profile_hash

    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "a")]) == 0
    table = pd.read_csv(tmp_path / "a" / "leaderboard.csv")
    records = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    hashes = {profile_hash(r["config"]["protocol"]) for r in records}
    assert len(hashes) == 1 and set(table["profile_hash"]) == hashes  # one profile, one hash, every row
    assert f"profile hash {hashes.pop()}" in (tmp_path / "a" / "leaderboard.md").read_text()

    copy = tmp_path / "results"  # one seed's record says it trained with another lr: its row shows both hashes
    shutil.copytree(results, copy)
    path = next(p for p in sorted((copy / "runs").glob("*.json"))
                if json.loads(p.read_text())["method"] == "erm" and json.loads(p.read_text())["ratio"] == "1pct")
    record = json.loads(path.read_text())
    record["config"]["protocol"]["lr"] = 0.5
    path.write_text(json.dumps(record))
    assert main(["leaderboard", "--results", str(copy), "--out", str(tmp_path / "b")]) == 0
    mixed = pd.read_csv(tmp_path / "b" / "leaderboard.csv").set_index(["method", "ratio"])
    assert len(mixed.loc[("erm", "1pct"), "profile_hash"].split()) == 2
    assert len(mixed.loc[("erm", "5pct"), "profile_hash"].split()) == 1


@pytest.mark.slow
def test_leaderboard_name_sets_the_file_stem_and_refuses_a_path(results, tmp_path, capsys):
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path), "--name", "cmnist-cpu"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmnist-cpu.csv", "cmnist-cpu.md"]
    assert (tmp_path / "cmnist-cpu.md").read_text().startswith("# Leaderboard: cmnist-cpu\n")
    assert len(pd.read_csv(tmp_path / "cmnist-cpu.csv")) == 4
    code, _, err = run(capsys, "leaderboard", "--results", str(results), "--out", str(tmp_path), "--name", "../x")
    assert_one_line_error(code, err, "--name '../x' is not a plain file name", "refusing it")


@pytest.mark.slow
def test_oracle_selection_is_labelled(results, tmp_path, capsys):
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path), "--selection", "oracle"]) == 0
    assert "oracle (best test" in (tmp_path / "leaderboard.md").read_text()


@pytest.mark.slow
def test_leaderboard_warns_about_corrupt_and_foreign_files_and_skips_them(results, tmp_path, capsys):
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    (copy / "runs" / "broken.json").write_text('{"format": "biasbench-run/1", "run_id": ')
    (copy / "runs" / "foreign.json").write_text('{"hello": "world"}')
    assert main(["leaderboard", "--results", str(copy), "--out", str(tmp_path / "lb")]) == 0
    _, err = capsys.readouterr()
    assert "broken.json: not valid JSON" in err and "foreign.json: not a biasbench run record" in err
    assert len(pd.read_csv(tmp_path / "lb" / "leaderboard.csv")) == 4


# ---- user errors -----------------------------------------------------------------------------

def test_unknown_method_lists_the_valid_ones(capsys, data_root, tmp_path):
    code, _, err = run(capsys, *base(data_root, tmp_path, "--method", "dro"))
    assert_one_line_error(code, err, "unknown method 'dro'", "erm", "reweighted_erm")


def test_unknown_dataset(capsys, data_root, tmp_path):
    code, _, err = run(capsys, *base(data_root, tmp_path, "--method", "erm", "--dataset", "imagenet"))
    assert_one_line_error(code, err, "unknown dataset 'imagenet'", "cmnist")


def test_ratio_not_generated_and_no_source_to_generate_it(capsys, data_root, tmp_path):
    code, _, err = run(capsys, "run", "--method", "erm", "--ratio", "2pct", "--data-dir", str(data_root),
                       "--results", str(tmp_path), "--source-dir", str(tmp_path / "no-sources"), "--device", "cpu")
    assert_one_line_error(code, err, "2pct is not generated", "does not exist")


def test_results_dir_unwritable(capsys, data_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, *base(data_root, blocker / "results", "--method", "erm"))
    assert_one_line_error(code, err, "cannot write results", "--results")


@pytest.mark.parametrize("args,needle", [(["--seeds", "0"], "--seeds"), (["--steps", "-1"], "--steps"),
                                         (["--device", "cuda:3"], "CUDA"), (["--device", "tpu"], "not a device"),
                                         (["--profile", "fast"], "invalid choice")])
def test_bad_numbers_and_choices(capsys, data_root, tmp_path, args, needle):
    argv = ["run", "--method", "erm", "--ratio", "1pct", "--device", "cpu", "--data-dir", str(data_root),
            "--results", str(tmp_path), *args]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, needle)


@pytest.mark.slow
def test_one_seed_has_no_std_and_the_markdown_says_n_1(results):
    from biasbench.results import leaderboard
    from biasbench.results.store import RunStore

    records, _ = RunStore(results).records()
    one = [r for r in records if r["seed"] == 41]
    table = leaderboard.aggregate(leaderboard.runs_table(one)[0])
    assert set(table["n_seeds"]) == {1} and table["test_unbiased_std"].isna().all()
    md = leaderboard.markdown(table)
    assert "±" not in md.replace("mean ± std", "") and "(n=1)" in md


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_run_is_a_one_method_sweep_through_the_launcher(data_root, tmp_path, monkeypatch):
    """`run` and `sweep` share one path: run plans the grid and trains each run with the local launcher's task."""
    from biasbench.launch import local

    seen, original = [], local.execute

    def spy(run, device, threads, reporter):
        seen.append(run.run_id)
        return original(run, device, threads, reporter)

    monkeypatch.setattr(local, "execute", spy)
    out = tmp_path / "res"
    assert main(base(data_root, out, "--method", "erm", "--seeds", "1")) == 0
    assert sorted(seen) == sorted(p.stem for p in (out / "runs").glob("*.json")) and len(seen) == 2
    main(["sweep", "--methods", "erm", "--ratios", "1pct", "5pct", "--seeds", "1", "--steps", "3", "--eval-every", "3",
          "--device", "cpu", "--max-parallel", "1", "--data-dir", str(data_root), "--results", str(out)])
    assert len(seen) == 2, "sweep did not find run's records under the same run ids"
