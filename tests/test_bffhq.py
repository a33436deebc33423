"""BFFHQ: ingesting the release, building all ratios from FFHQ + labels, and the input errors."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from bffhq_fixtures import SMALL, default_rows, make_release, write_ffhq
from biasbench.errors import UserError
from biasbench.generators import bffhq
from biasbench.generators.build import generate
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.dataset_format.read import read_arrays
from biasbench.ratios import STANDARD_RATIOS, count_for
from helpers import assert_one_line_error, run


@pytest.fixture(autouse=True)
def small_protocol(monkeypatch):
    """Every test here builds with the tiny protocol (200 train images per class)."""
    monkeypatch.setattr(bffhq, "GENERATOR", bffhq.BiasedFFHQ(SMALL))


@pytest.fixture(scope="module")
def ffhq_src(tmp_path_factory):
    return write_ffhq(tmp_path_factory.mktemp("ffhq"), default_rows())


@pytest.fixture(scope="module")
def release_src(tmp_path_factory):
    return make_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def built(ffhq_src, tmp_path_factory):
    import biasbench.generators.bffhq as module

    keep = module.GENERATOR
    module.GENERATOR = module.BiasedFFHQ(SMALL)
    try:
        return generate("bffhq", list(STANDARD_RATIOS), tmp_path_factory.mktemp("out"), 0, ffhq_src, workers=2)
    finally:
        module.GENERATOR = keep


def arrays(path, ratio, split):
    return read_arrays(DatasetFolder(path, "bffhq"), Decimal(ratio), split)


def labels_from_csv(src):
    import csv

    with open(src / "ffhq_aging_labels.csv") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for r in rows:
        age = 0 if r["age_group"] in SMALL.young_groups else 1 if r["age_group"] in SMALL.old_groups else -1
        out[int(r["image_number"])] = (age, 0 if r["gender"] == "female" else 1)
    return out


def test_ffhq_build_follows_the_release_rule(built, ffhq_src):
    truth = labels_from_csv(ffhq_src)
    ids = {}
    for ratio in STANDARD_RATIOS:
        train = arrays(built.path, ratio, "train")
        k = count_for(SMALL.train_per_class, ratio)
        assert np.bincount(train.label).tolist() == [SMALL.train_per_class] * 2
        for c in (0, 1):
            assert (~train.aligned[train.label == c]).sum() == k
        assert all(truth[i] == (a, g) for i, a, g in zip(train.source_index, train.label, train.bias))
        assert np.array_equal(train.aligned, train.label == train.bias)
        assert train.images.shape[1:] == (16, 16, 3)
        ids[ratio] = train
    conflicting = [set(ids[r].source_index[~ids[r].aligned]) for r in STANDARD_RATIOS]
    assert all(a < b for a, b in zip(conflicting, conflicting[1:]))  # nested, strictly growing
    valid, test = arrays(built.path, "0.01", "valid"), arrays(built.path, "0.01", "test")
    for split in (valid, test):
        assert np.bincount(split.label * 2 + split.bias, minlength=4).tolist() == [SMALL.eval_per_group] * 4
    held = set(valid.source_index) | set(test.source_index)
    assert not set(valid.source_index) & set(test.source_index)
    assert not held & set().union(*(set(t.source_index) for t in ids.values()))
    assert all(truth[i][0] >= 0 for i in held)


def test_stored_pixels_are_the_lanczos_resized_source(built, ffhq_src):
    test = arrays(built.path, "0.05", "test")
    i = int(test.source_index[0])
    with Image.open(ffhq_src / "thumbnails" / f"{i // 1000 * 1000:05d}" / f"{i:05d}.png") as im:
        expected = np.asarray(im.convert("RGB").resize((16, 16), Image.Resampling.LANCZOS))
    assert np.array_equal(test.images[0], expected)


def test_same_bytes_for_one_worker_one_ratio_and_shuffled_csv(built, ffhq_src, tmp_path):
    rows = default_rows()
    random.Random(3).shuffle(rows)
    src = write_ffhq(tmp_path / "src", rows)  # same ids and labels, other row order (and other image noise)
    alone = generate("bffhq", [Decimal("0.02")], tmp_path / "a", 0, ffhq_src, workers=1)
    a = json.loads((built.path / "manifest.json").read_text())["files"]
    b = json.loads((alone.path / "manifest.json").read_text())["files"]
    assert {k: v for k, v in a.items() if k.startswith(("data/2pct/", "data/common/"))} == {
        k: v for k, v in b.items() if k.startswith("data/")}
    shuffled = generate("bffhq", [Decimal("0.02")], tmp_path / "b", 0, src, workers=2)
    x, y = arrays(alone.path, "0.02", "train"), arrays(shuffled.path, "0.02", "train")
    assert np.array_equal(x.source_index, y.source_index) and np.array_equal(x.label, y.label)


def test_card_carries_the_licence_and_source_digests(built):
    card = (built.path / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in card and "CC BY-NC-SA 4.0" in card and "Flickr" in card
    unit = json.loads((built.path / "data" / "common" / "unit.json").read_text())
    for f in unit["provenance"]["sources"]:
        assert f["sha256"] in card
    assert "ffhq_aging_labels.csv" in card
    from datasets import load_dataset

    ds = load_dataset(str(built.path), "1pct")
    assert ds["train"].features["label"].names == ["young", "old"]
    assert ds["test"].features["bias_label"].names == ["female", "male"] and len(ds["test"]) == 12


def test_release_is_ingested_unchanged(release_src, tmp_path):
    report = generate("bffhq", [Decimal("0.005")], tmp_path, 0, release_src, workers=2)
    train = arrays(report.path, "0.005", "train")
    assert len(train.label) == 44 and (~train.aligned).sum() == 4
    assert [len(arrays(report.path, "0.005", s).label) for s in ("valid", "test")] == [8, 8]
    path = next((release_src / "0.5pct" / "conflict" / "1").iterdir())
    image_id, age, gender = (int(x) for x in path.stem.split("_"))
    row = int(np.flatnonzero(train.source_index == image_id)[0])
    assert (train.label[row], train.bias[row], train.aligned[row]) == (age, gender, False)
    assert np.array_equal(train.images[row], np.asarray(Image.open(path).convert("RGB")))
    card = (report.path / "README.md").read_text()
    unit = json.loads((report.path / "data" / "0.5pct" / "unit.json").read_text())
    assert [f["file"] for f in unit["provenance"]["sources"]] == ["0.5pct/align", "0.5pct/conflict", "valid", "test"]
    assert all(f["sha256"] in card and f["verified"] for f in unit["provenance"]["sources"])


def test_release_folder_digest_is_sha256sum_of_the_listing(release_src):
    import hashlib
    import subprocess

    from biasbench.sources.bffhq import load_release

    source = load_release(release_src, proto=SMALL)
    listing = subprocess.run("find 0.5pct/align -type f | LC_ALL=C sort | xargs sha256sum", shell=True,
                             cwd=release_src, capture_output=True, check=True).stdout
    assert source.files[0].sha256 == hashlib.sha256(listing).hexdigest()


def test_release_with_other_counts_needs_allow_unverified(release_src, tmp_path):
    import shutil

    src = tmp_path / "rel"
    shutil.copytree(release_src, src)
    next((src / "valid").iterdir()).unlink()
    with pytest.raises(UserError, match=r"valid: 7 \(release: 8\).*--allow-unverified"):
        generate("bffhq", [Decimal("0.005")], tmp_path / "o", 0, src)
    report = generate("bffhq", [Decimal("0.005")], tmp_path / "o", 0, src, allow_unverified=True)
    assert "Unverified source" in (report.path / "README.md").read_text()


# -- errors: one line, exit code 2 ---------------------------------------------------------------

def test_release_has_only_half_a_percent(capsys, release_src, tmp_path):
    code, _, err = run(capsys, "generate", "bffhq", "--ratio", "1pct", "--source-dir", str(release_src),
                       "--out", str(tmp_path))
    assert_one_line_error(code, err, "0.5pct only")


def test_unparsable_release_file_name(capsys, release_src, tmp_path):
    import shutil

    src = tmp_path / "rel"
    shutil.copytree(release_src, src)
    (src / "test" / "face_01.png").write_bytes(b"x")
    code, _, err = run(capsys, "generate", "bffhq", "--ratio", "0.5pct", "--source-dir", str(src),
                       "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "face_01.png", "does not parse")


def test_release_file_in_the_wrong_folder(capsys, release_src, tmp_path):
    import shutil

    src = tmp_path / "rel"
    shutil.copytree(release_src, src)
    (src / "0.5pct" / "align" / "0" / "9999_0_1.png").write_bytes(b"x")
    code, _, err = run(capsys, "generate", "bffhq", "--ratio", "0.5pct", "--source-dir", str(src),
                       "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "9999_0_1.png", "bias-conflicting")


@pytest.mark.parametrize("drop,needle", [("gender", "no gender column"), ("age_group", "no age or age group column"),
                                         ("image_number", "no image id column")])
def test_label_csv_missing_a_column(capsys, tmp_path, drop, needle):
    cols = tuple(c for c in ("image_number", "age_group", "gender") if c != drop)
    src = write_ffhq(tmp_path / "src", default_rows()[:20], columns=cols)
    code, _, err = run(capsys, "generate", "bffhq", "--source-dir", str(src), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "ffhq_aging_labels.csv", needle)


def test_csv_id_without_an_image(capsys, tmp_path):
    rows = default_rows()
    src = write_ffhq(tmp_path / "src", rows, skip_images=2)
    code, _, err = run(capsys, "generate", "bffhq", "--source-dir", str(src), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "2 image id(s)", "no image file", f"{int(rows[0]['image_number']):05d}")


def test_bad_label_values_name_the_line(capsys, tmp_path):
    rows = default_rows()[:20]
    rows[4]["gender"] = "unknown"
    src = write_ffhq(tmp_path / "src", rows)
    code, _, err = run(capsys, "generate", "bffhq", "--source-dir", str(src), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "ffhq_aging_labels.csv:6", "not female or male")


def test_ratio_impossible_for_the_conflicting_pool_says_how_many(capsys, ffhq_src, tmp_path):
    code, _, err = run(capsys, "generate", "bffhq", "--ratio", "10%", "--source-dir", str(ffhq_src),
                       "--out", str(tmp_path))
    assert_one_line_error(code, err, "10pct needs 20 bias-conflicting", "only 12 are available")


def test_no_source_dir_says_what_to_pass(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("BIASBENCH_SOURCES", raising=False)
    code, _, err = run(capsys, "generate", "bffhq", "--out", str(tmp_path))
    assert_one_line_error(code, err, "--source-dir", "cannot be downloaded")


def test_publish_shows_the_ffhq_licence(capsys, built, tmp_path):
    code, out, _ = run(capsys, "publish", "bffhq", "--data-dir", str(built.path.parent), "--dry-run", str(tmp_path / "t"))
    assert code == 0 and "CC BY-NC-SA 4.0" in out and "Flickr" in out


def test_up_filtered_png_decodes_to_the_same_pixels_and_is_smaller_on_smooth_images():
    import io
    import zlib

    from biasbench.dataset_format.png import encode_rgb

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (3, 17, 13, 3), dtype=np.uint8)
    y, x = np.mgrid[0:64, 0:64]
    smooth = np.stack([x * 3, y * 2, x + y], -1).astype(np.uint8)[None]
    for images in (noise, smooth):
        for data, image in zip(encode_rgb(images, row_filter=2), images):
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), image)
            idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
            assert zlib.decompress(idat)[:: image.shape[1] * 3 + 1] == b"\x02" * image.shape[0]
    assert len(encode_rgb(smooth, row_filter=2)[0]) < len(encode_rgb(smooth)[0])
