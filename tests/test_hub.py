"""Publishing (at the HfApi boundary), verifying copies, previews, and Hub ids."""

from __future__ import annotations

import json
import logging
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from biasbench.cli import main
from biasbench.errors import UserError
from biasbench.generators.build import generate
from biasbench.hub import remote
from helpers import assert_one_line_error, run

TOKEN = "hf_biasbenchTESTtoken0123456789secret"


@pytest.fixture(scope="module")
def root(fixture_mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("hub-data")
    generate("cmnist", [Decimal("0.005"), Decimal("0.01")], out, 0, fixture_mnist, allow_unverified=True)
    return out


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


def test_dry_run_writes_a_loadable_tree_for_the_chosen_configs(root, tmp_path, capsys):
    from datasets import load_dataset

    out = tmp_path / "upload"
    assert main(["publish", "cmnist", "--ratio", "1pct", "--dry-run", str(out), "--data-dir", str(root)]) == 0
    assert tree(out) == {
        "README.md", "manifest.json", "data/1pct/train-00000-of-00001.parquet", "data/1pct/unit.json",
        "data/1pct/preview.png", "data/common/valid-00000-of-00001.parquet",
        "data/common/test-00000-of-00001.parquet", "data/common/unit.json",
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["configs"]) == ["1pct"] and set(manifest["files"]) == tree(out) - {"manifest.json"}
    ds = load_dataset(str(out), "1pct")
    assert [len(ds[s]) for s in ("train", "valid", "test")] == [2000, 5000, 1000]
    assert "![aligned and conflicting training images of 1pct](data/1pct/preview.png)" in (out / "README.md").read_text()
    assert main(["verify", str(out)]) == 0


class Recorder:
    """Stands in for HfApi: records the calls biasbench is allowed to make, fails on any other."""

    calls: list = []

    def __init__(self, token=None):
        Recorder.calls.append(("init", token == TOKEN))

    def create_repo(self, repo_id, **kw):
        Recorder.calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_branch(self, repo_id, **kw):
        Recorder.calls.append(("create_branch", repo_id, kw))

    def create_commit(self, repo_id, operations, **kw):
        ops = sorted((op.path_in_repo, Path(op.path_or_fileobj).read_bytes()) for op in operations)
        Recorder.calls.append(("create_commit", repo_id, ops, kw))

        class Info:
            commit_url = f"https://huggingface.co/datasets/{repo_id}/commit/abc"

        return Info()

    def __getattr__(self, name):
        raise AssertionError(f"unexpected HfApi call: {name}")


@pytest.fixture
def hub(monkeypatch, tmp_path):
    import huggingface_hub

    Recorder.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", Recorder)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    return Recorder


def test_publish_makes_exactly_the_expected_calls_in_one_commit(root, hub, tmp_path, capsys):
    assert main(["publish", "cmnist", "--repo-id", "me/cmnist-test", "--private", "--revision", "v1",
                 "--data-dir", str(root)]) == 0
    names = [c[0] for c in hub.calls]
    assert names == ["init", "create_repo", "create_branch", "create_commit"]
    assert hub.calls[0] == ("init", True)
    assert hub.calls[1] == ("create_repo", "me/cmnist-test", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert hub.calls[2] == ("create_branch", "me/cmnist-test", {"branch": "v1", "repo_type": "dataset", "exist_ok": True})
    _, repo, ops, kw = hub.calls[3]
    assert kw["repo_type"] == "dataset" and kw["revision"] == "v1"
    manifest = json.loads(dict(ops)["manifest.json"])
    for name, config in manifest["configs"].items():
        assert f"{name}={config['fingerprint'][:16]}" in kw["commit_message"]
    assert kw["commit_message"].startswith("biasbench 0.1.0: cmnist 0.5pct, 1pct")
    dry = tmp_path / "dry"
    assert main(["publish", "cmnist", "--dry-run", str(dry), "--repo-id", "me/cmnist-test", "--data-dir", str(root)]) == 0
    assert 'load_dataset("me/cmnist-test", "1pct")' in (dry / "README.md").read_text()  # the repo id, not a placeholder
    assert dict(ops) == {name: (dry / name).read_bytes() for name in tree(dry)}  # the dry run is the upload


@pytest.mark.slow  # end to end: in `make test`; the fast loop keeps the contracts (test_contract.py)
def test_token_never_appears_in_output_logs_or_files(root, hub, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    assert main(["publish", "cmnist", "--repo-id", "me/x", "--data-dir", str(root)]) == 0

    class Failing(Recorder):
        def create_commit(self, repo_id, operations, **kw):
            raise RuntimeError(f"401 Unauthorized for token {TOKEN}")

    import huggingface_hub

    huggingface_hub.HfApi = Failing
    code, out, err = run(capsys, "publish", "cmnist", "--repo-id", "me/x", "--data-dir", str(root))
    assert_one_line_error(code, err, "publishing to me/x failed", "***")
    captured = capsys.readouterr()
    seen = out + err + captured.out + captured.err + caplog.text
    assert TOKEN not in seen
    for base in (root, tmp_path):
        for p in Path(base).rglob("*"):
            if p.is_file():
                assert TOKEN.encode() not in p.read_bytes(), p


def test_no_token_tells_how_to_log_in(root, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    code, _, err = run(capsys, "publish", "cmnist", "--repo-id", "me/x", "--data-dir", str(root))
    assert_one_line_error(code, err, "no Hugging Face token", "hf auth login", "HF_TOKEN")


@pytest.mark.parametrize("args,needle", [(["--repo-id", "not a repo"], "OWNER/NAME"), ([], "--repo-id"),
                                         (["--repo-id", "me/x", "--ratio", "5pct"], "no config 5pct")])
def test_publish_user_errors(root, hub, capsys, args, needle):
    code, _, err = run(capsys, "publish", "cmnist", "--data-dir", str(root), *args)
    assert_one_line_error(code, err, needle)


# ---- verify ------------------------------------------------------------------------------------

@pytest.fixture
def copy(root, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(root / "cmnist", dst, ignore=shutil.ignore_patterns(".cache", ".lock"))
    return dst


def verify_lines(capsys, path) -> tuple[int, list[str]]:
    code = main(["verify", str(path)])
    return code, capsys.readouterr().out.splitlines()


def test_intact_copy_verifies(copy, capsys):
    code, lines = verify_lines(capsys, copy)
    assert code == 0 and lines[:3] == ["files and card: OK", "0.5pct: OK", "1pct: OK"]


def test_flipped_byte_in_a_shard(copy, capsys):
    shard = copy / "data" / "1pct" / "train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, lines = verify_lines(capsys, copy)
    assert code == 1 and lines[1] == "0.5pct: OK"
    assert lines[2].startswith("1pct: MISMATCH: data/1pct/train-00000-of-00001.parquet sha256 differs")


def test_missing_shard(copy, capsys):
    (copy / "data" / "common" / "test-00000-of-00001.parquet").unlink()
    code, lines = verify_lines(capsys, copy)
    assert code == 1
    assert all("data/common/test-00000-of-00001.parquet missing" in line for line in lines[1:3])


def test_edited_card(copy, capsys):
    card = copy / "README.md"
    card.write_text(card.read_text().replace("Colored MNIST", "Coloured MNIST"))
    code, lines = verify_lines(capsys, copy)
    assert code == 1 and lines[0] == "files and card: MISMATCH: README.md sha256 differs"


def test_manifest_that_lies(copy, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    split = manifest["configs"]["0.5pct"]["splits"]["train"]
    split["fingerprint"] = split["fingerprint"][::-1]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    code, lines = verify_lines(capsys, copy)
    assert code == 1
    assert "train content fingerprint differs" in lines[1] and "config fingerprint is not the hash" in lines[1]


def test_regenerate_rebuilds_and_compares(copy, fixture_mnist, capsys):
    assert main(["verify", str(copy), "--regenerate", "--source-dir", str(fixture_mnist)]) == 0
    out = capsys.readouterr().out
    assert "0.5pct (regenerated): OK" in out and "1pct (regenerated): OK" in out


def test_verify_of_a_folder_without_manifest_is_a_user_error(tmp_path, capsys):
    code, _, err = run(capsys, "verify", str(tmp_path))
    assert_one_line_error(code, err, "manifest.json")


# ---- preview and Hub ids -----------------------------------------------------------------------

def test_preview_command_reproduces_the_folder_preview(root, tmp_path):
    out = tmp_path / "p.png"
    assert main(["preview", "cmnist", "--ratio", "0.5%", "--out", str(out), "--data-dir", str(root)]) == 0
    assert out.read_bytes() == (root / "cmnist" / "data" / "0.5pct" / "preview.png").read_bytes()


def test_hub_ids_are_recognised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert remote.hub_repo_id("hf://me/colored-mnist") == "me/colored-mnist"
    assert remote.hub_repo_id("me/colored-mnist") == "me/colored-mnist"
    (tmp_path / "me" / "local").mkdir(parents=True)
    assert remote.hub_repo_id("me/local") is None  # an existing folder wins
    assert remote.hub_repo_id("./data") is None
    with pytest.raises(UserError):
        remote.hub_repo_id("hf://not a repo")


def test_offline_hub_fetch_is_one_clear_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code, _, err = run(capsys, "verify", "hf://biasbench/colored-mnist")
    assert_one_line_error(code, err, "cannot fetch dataset biasbench/colored-mnist")
    code, _, err = run(capsys, "run", "--method", "erm", "--data", "hf://biasbench/colored-mnist", "--device", "cpu",
                       "--results", str(tmp_path / "r"))
    assert_one_line_error(code, err, "cannot fetch dataset biasbench/colored-mnist")


@pytest.mark.skipif(not (os.environ.get("BIASBENCH_HUB_TEST") == "1" and os.environ.get("HF_TOKEN")),
                    reason="live Hub test: set BIASBENCH_HUB_TEST=1, HF_TOKEN and BIASBENCH_HUB_REPO=OWNER/NAME")
def test_live_publish_verify_and_load(root, capsys):
    from datasets import load_dataset

    repo = os.environ.get("BIASBENCH_HUB_REPO", "")
    assert main(["publish", "cmnist", "--ratio", "1pct", "--repo-id", repo, "--private", "--data-dir", str(root)]) == 0
    assert main(["verify", repo]) == 0
    assert len(load_dataset(repo, "1pct", split="train")) == 2000
