"""The dataset folder that `biasbench generate` writes: loadable, deterministic, atomic, idempotent."""

from __future__ import annotations

import hashlib
import json
import textwrap
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

from biasbench.errors import UserError
from biasbench.generators.build import generate
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.dataset_format.read import read_arrays
from biasbench.protocol import CMNIST
from biasbench.ratios import parse_ratios
from conftest import cli, synthetic_mnist, write_mnist

ALL = parse_ratios("all")
CLI_BASE = ["generate", "cmnist", "--allow-unverified", "--workers", "1"]


def build(fixture_mnist: Path, out: Path, ratios=ALL, **kw):
    kw.setdefault("allow_unverified", True)
    return generate("cmnist", ratios, out, seed=kw.pop("seed", 0), source_dir=fixture_mnist, **kw)


def files_of(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    }


def card_yaml(path: Path) -> dict:
    text = (path / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def built(fixture_mnist, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built")
    report = build(fixture_mnist, out, workers=2)
    assert report.built == ["0.5pct", "1pct", "2pct", "5pct"]
    return report.path


def test_load_dataset_returns_three_splits_with_the_declared_features(built):
    from datasets import ClassLabel, Image, Value, load_dataset

    for name in ("0.5pct", "5pct"):
        ds = load_dataset(str(built), name)
        assert set(ds) == {"train", "valid", "test"}
        assert [len(ds[s]) for s in ("train", "valid", "test")] == [2000, 5000, 1000]
        f = ds["train"].features
        assert isinstance(f["image"], Image)
        assert f["label"] == ClassLabel(names=list(CMNIST.label_names))
        assert f["bias_label"] == ClassLabel(names=list(CMNIST.colour_names))
        assert f["aligned"] == Value("bool") and f["source_index"] == Value("int64")


def test_pixels_are_the_grey_digit_times_the_named_colour(built, fixture_mnist):
    from datasets import load_dataset

    grey_train = synthetic_mnist()["train-images-idx3-ubyte"]
    train = load_dataset(str(built), "5pct", split="train")
    colours = np.array(CMNIST.colours)
    rows = train.select(range(0, 2000, 37))
    for row in rows:
        image = np.asarray(row["image"]).astype(float)
        grey = grey_train[row["source_index"]].astype(float)
        assert np.all(image[grey == 0] == 0)  # background stays black
        bright = grey > 100
        ratio = (image[bright] / grey[bright][:, None]).mean(axis=0)
        assert np.argmin(np.abs(colours - ratio).sum(axis=1)) == row["bias_label"]
        assert np.all(np.abs(ratio - colours[row["bias_label"]]) < 6 * CMNIST.sigma + 0.01)
        assert row["aligned"] == (row["label"] == row["bias_label"])


def test_manifest_lists_every_file_with_its_sha256(built):
    manifest = json.loads((built / "manifest.json").read_text())
    on_disk = set(files_of(built)) - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((built / name).read_bytes()).hexdigest() == digest
    assert list(manifest["configs"]) == ["0.5pct", "1pct", "2pct", "5pct"]


def test_fingerprints_recomputed_from_decoded_files_match_the_manifest(built):
    manifest = json.loads((built / "manifest.json").read_text())
    folder = DatasetFolder(built, "cmnist")
    for name in ("1pct", "2pct"):
        for split, info in manifest["configs"][name]["splits"].items():
            arrays = read_arrays(folder, Decimal(name[:-3]) / 100, split, verify=False)
            assert arrays.computed_fingerprint() == info["fingerprint"]


def test_fixture_fingerprints_are_pinned(built):
    # The content of a build from the synthetic fixture: if this changes, every
    # published dataset changes too (bump GENERATOR_VERSION and say so).
    manifest = json.loads((built / "manifest.json").read_text())
    got = {name: c["fingerprint"][:16] for name, c in manifest["configs"].items()}
    assert got == PINNED_FIXTURE_FINGERPRINTS


def test_random_rule_is_a_named_dataset_with_the_earlier_content(fixture_mnist, built, tmp_path):
    """`--conflicts random` writes ROOT/cmnist-random, says so in its card and manifest, and its content is
    the random-draw construction's, unchanged (the fingerprints pinned before LfF's rule became canonical)."""
    report = build(fixture_mnist, tmp_path, workers=1, conflicts="random")
    assert report.path == tmp_path / "cmnist-random"
    manifest = json.loads((report.path / "manifest.json").read_text())
    got = {name: c["fingerprint"][:16] for name, c in manifest["configs"].items()}
    assert got == PINNED_RANDOM_FINGERPRINTS
    assert {c["conflicts"] for c in manifest["configs"].values()} == {"random"}
    assert {c["conflicts"] for c in json.loads((built / "manifest.json").read_text())["configs"].values()} == {"lff"}
    card = (report.path / "README.md").read_text()
    assert "**a random draw**" in card and "--conflicts random" in card
    assert "**LfF's rule**" in (built / "README.md").read_text()


def test_conflicts_option_is_refused_where_a_dataset_has_one_construction(tmp_path):
    with pytest.raises(UserError, match="single construction"):
        generate("bffhq", [Decimal("0.005")], tmp_path, 0, conflicts="random")
    result = cli("generate", "cmnist", "--conflicts", "lff2", "--out", str(tmp_path))
    assert result.returncode == 2 and "invalid choice" in result.stderr


PINNED_FIXTURE_FINGERPRINTS = {
    "0.5pct": "b8bd39b1174dce28",
    "1pct": "8a486955ed53e543",
    "2pct": "fe3db9c3f7e5ef55",
    "5pct": "ca093f7bf9672144",
}
PINNED_RANDOM_FINGERPRINTS = {
    "0.5pct": "e6877fc0aa4b7f90",
    "1pct": "c0416918c89bd0ac",
    "2pct": "6dcc55b84dac1991",
    "5pct": "af61ecc042f0db27",
}


@pytest.mark.slow  # processes killed or started afresh: in `make test`
def test_two_fresh_processes_write_byte_identical_folders(fixture_mnist, tmp_path):
    a = cli(*CLI_BASE, "--ratio", "1%,5%", "--source-dir", str(fixture_mnist), "--out", str(tmp_path / "a"))
    b = cli(*CLI_BASE, "--ratio", "1%,5%", "--source-dir", str(fixture_mnist), "--out", str(tmp_path / "b"))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    fa, fb = files_of(tmp_path / "a" / "cmnist"), files_of(tmp_path / "b" / "cmnist")
    assert len(fa) == 11 and fa == fb  # card, manifest, 3 units x (shards + unit.json), 2 previews


def test_worker_count_does_not_change_any_byte(fixture_mnist, built, tmp_path):
    report = build(fixture_mnist, tmp_path, workers=1)
    assert files_of(report.path) == files_of(built)


def test_a_ratio_does_not_depend_on_which_other_ratios_were_built(fixture_mnist, built, tmp_path):
    report = build(fixture_mnist, tmp_path, ratios=[Decimal("0.01")])
    alone = files_of(report.path)
    together = files_of(built)
    for name, data in alone.items():
        if name.startswith("data/"):
            assert together[name] == data, name


def test_rerun_is_a_noop_that_says_so(fixture_mnist, tmp_path):
    first = cli(*CLI_BASE, "--ratio", "1pct", "--source-dir", str(fixture_mnist), "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "cmnist").rglob("*") if p.is_file()}
    again = cli(*CLI_BASE, "--ratio", "1pct", "--source-dir", str(fixture_mnist), "--out", str(tmp_path))
    assert again.returncode == 0
    assert "nothing to do" in again.stdout and "cmnist: built" not in again.stdout
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "cmnist").rglob("*") if p.is_file()}
    assert before == after


def test_card_is_rebuilt_from_disk_when_ratios_are_added_or_regenerated(fixture_mnist, built, tmp_path):
    from datasets import load_dataset

    build(fixture_mnist, tmp_path, ratios=[Decimal("0.01")])
    path = tmp_path / "cmnist"
    assert [c["config_name"] for c in card_yaml(path)["configs"]] == ["1pct"]
    build(fixture_mnist, tmp_path, ratios=[Decimal("0.05")])
    meta = card_yaml(path)
    assert [c["config_name"] for c in meta["configs"]] == ["1pct", "5pct"]
    assert [c["config_name"] for c in meta["dataset_info"]] == ["1pct", "5pct"]
    build(fixture_mnist, tmp_path, ratios=[Decimal("0.01")], force=True)
    for name in ("1pct", "5pct"):
        assert len(load_dataset(str(path), name, split="train")) == 2000
    both = json.loads((path / "manifest.json").read_text())["configs"]
    full = json.loads((built / "manifest.json").read_text())["configs"]
    assert both == {k: full[k] for k in ("1pct", "5pct")}


def test_card_states_counts_seed_sources_licence_and_citations(built):
    text = (built / "README.md").read_text()
    manifest = json.loads((built / "manifest.json").read_text())
    counts = manifest and json.loads((built / "data" / "1pct" / "unit.json").read_text())["splits"]["train"]["counts"]
    row = "| train | " + " | ".join(f"{a} / {c}" for a, c in zip(counts["aligned"], counts["conflicting"]))
    assert row in text
    for needle in ("Seed: 0", "cc-by-sa-3.0", "CC BY-SA 3.0", "nam2020learning", "lee2021learning",
                   "lecun1998mnist", "vermilion", "Unverified source", "biasbench_spurious-0.1.0-py3-none-any.whl"):
        assert needle in text, needle


def test_other_seed_is_another_folder_and_the_card_says_so(fixture_mnist, tmp_path):
    report = build(fixture_mnist, tmp_path, ratios=[Decimal("0.01")], seed=7)
    assert report.path == tmp_path / "cmnist-seed7"
    assert "**Seed 7.** This is *not* the canonical dataset" in (report.path / "README.md").read_text()


def test_changed_source_refuses_without_force(fixture_mnist, tmp_path):
    build(fixture_mnist, tmp_path, ratios=[Decimal("0.01")])
    arrays = synthetic_mnist()
    arrays["train-images-idx3-ubyte"] = arrays["train-images-idx3-ubyte"] // 2
    other = write_mnist(tmp_path / "other-src", arrays)
    with pytest.raises(UserError, match="--force"):
        build(other, tmp_path, ratios=[Decimal("0.01")])
    report = build(other, tmp_path, ratios=[Decimal("0.01")], force=True)
    assert report.built == ["1pct"]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from biasbench.dataset_format import folder, parquet
    target, n = sys.argv[1], int(sys.argv[2])
    calls = [0]
    def hook(original):
        def wrapped(*a, **k):
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*a, **k)
        return wrapped
    if target == "write_split":
        parquet.write_split = hook(parquet.write_split)
    else:
        folder.DatasetFolder.write_card_and_manifest = hook(folder.DatasetFolder.write_card_and_manifest)
    from biasbench.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


@pytest.mark.slow  # processes killed or started afresh: in `make test`
@pytest.mark.parametrize("target,n", [("write_split", 4), ("write_split", 2), ("card", 1)])
def test_kill_9_never_leaves_a_half_config_that_looks_complete(fixture_mnist, built, tmp_path, target, n):
    import subprocess
    import sys

    from conftest import REPO

    args = [*CLI_BASE, "--source-dir", str(fixture_mnist), "--out", str(tmp_path)]
    killed = subprocess.run([sys.executable, "-c", KILLER, target, str(n), *args], cwd=REPO, capture_output=True)
    assert killed.returncode == -9
    path = tmp_path / "cmnist"
    complete = [c.name for c in DatasetFolder(path, "cmnist").configs()]
    expected = {("write_split", 4): ["0.5pct"], ("write_split", 2): [], ("card", 1): ["0.5pct", "1pct", "2pct", "5pct"]}
    assert complete == expected[(target, n)]
    if (path / "README.md").exists():  # a stale card may lag behind, but never lists more than exists
        listed = [c["config_name"] for c in card_yaml(path)["configs"]]
        assert set(listed) <= set(complete)
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(path.rglob(".tmp-*"))
    assert files_of(path) == files_of(built)


def test_two_concurrent_generations_into_one_folder_both_succeed(fixture_mnist, built, tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    args = [sys.executable, "-m", "biasbench.cli", *CLI_BASE, "--source-dir", str(fixture_mnist), "--out", str(tmp_path)]
    procs = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdout = b"".join(o[0] for o in outputs).decode()
    assert stdout.count("cmnist: built") == 1 and "nothing to do" in stdout  # the lock serialised them
    assert files_of(tmp_path / "cmnist") == files_of(built)
