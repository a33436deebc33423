"""CIFAR-10 "python version" reader: layouts, checksums, and pickles that must not run code."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from biasbench.errors import UserError
from biasbench.sources import cifar10
from biasbench.sources.common import md5_hex
from conftest import SHARED_DATA
from helpers import fake_batches, write_folder


@pytest.fixture
def official(monkeypatch):
    batches = fake_batches()
    monkeypatch.setattr(cifar10, "OFFICIAL_MD5", {k: md5_hex(v) for k, v in batches.items()})
    return batches


def write_archive(path, batches):
    path.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path / cifar10.ARCHIVE, "w:gz") as tar:
        for name, data in batches.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_folder_and_archive_read_the_same(tmp_path, official):
    a = cifar10.load_cifar10(write_folder(tmp_path / "dir", official))
    b = cifar10.load_cifar10(write_archive(tmp_path / "tar", official))
    assert a.verified and b.verified
    assert a.train_images.shape == (100, 32, 32, 3) and a.test_images.shape == (20, 32, 32, 3)
    assert np.array_equal(a.train_images, b.train_images) and np.array_equal(a.test_labels, b.test_labels)
    raw = pickle.loads(official["data_batch_2"], encoding="latin1")
    # row-major R plane, G plane, B plane -> HWC
    assert np.array_equal(a.train_images[20, 0, 1], raw["data"][0, [1, 1024 + 1, 2048 + 1]])
    assert a.train_labels[20:30].tolist() == raw["labels"][:10]


def test_wrong_md5_refuses_unless_allowed(tmp_path):
    path = write_folder(tmp_path, fake_batches())
    with pytest.raises(UserError, match="md5.*--allow-unverified"):
        cifar10.load_cifar10(path)
    assert not cifar10.load_cifar10(path, allow_unverified=True).verified


def test_missing_batch_is_named(tmp_path, official):
    path = write_folder(tmp_path, official)
    (path / cifar10.FOLDER / "data_batch_4").unlink()
    with pytest.raises(UserError, match="data_batch_4"):
        cifar10.load_cifar10(path)


class Evil:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (subprocess.call, (self.command,), None)


@pytest.mark.parametrize("payload", ["os.system", "subprocess.call", "builtins.eval"])
def test_crafted_pickle_fails_without_running_code(tmp_path, payload):
    marker = tmp_path / "pwned"
    module, name = payload.rsplit(".", 1)
    crafted = (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\nq\x00X"
               + len(f"touch {marker}").to_bytes(4, "little") + f"touch {marker}".encode() + b"\x85R.")
    with pytest.raises(UserError, match=f"global '{module}.{name}' is not allowed"):
        cifar10.load_batch(crafted, "crafted")
    assert not marker.exists()
    with pytest.raises(UserError, match="not allowed"):
        cifar10.load_batch(pickle.dumps({"data": Evil(f"touch {marker}")}, protocol=2), "evil")
    assert not marker.exists()


@pytest.mark.parametrize("obj,needle", [([1, 2], "expected a dict"),
                                        ({"data": np.zeros((2, 5), np.uint8), "labels": [0, 1]}, "3072"),
                                        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "list of 2 integers"),
                                        ({"data": np.zeros((1, 3072), np.uint8), "labels": [12]}, "outside 0..9")])
def test_malformed_batches_are_user_errors(obj, needle):
    with pytest.raises(UserError, match=needle):
        cifar10.load_batch(pickle.dumps(obj, protocol=2), "bad")


def test_truncated_batch_is_a_user_error(official):
    with pytest.raises(UserError, match="not a readable CIFAR-10 batch"):
        cifar10.load_batch(official["test_batch"][:500], "cut")


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "cifar10-jpeg" / "materialize.py").is_file(),
                    reason="the JPEG copy of CIFAR-10 is not in ../shared/data")
def test_shared_jpeg_copy_reads_but_is_not_official(tmp_path):
    subprocess.run([sys.executable, str(SHARED_DATA / "cifar10-jpeg" / "materialize.py"), str(tmp_path)], check=True,
                   capture_output=True)
    with pytest.raises(UserError, match="--allow-unverified"):
        cifar10.load_cifar10(tmp_path)
    source = cifar10.load_cifar10(tmp_path, allow_unverified=True)
    assert source.train_images.shape == (50000, 32, 32, 3) and source.test_images.shape == (10000, 32, 32, 3)
    assert np.bincount(source.train_labels).tolist() == [5000] * 10
    assert np.bincount(source.test_labels).tolist() == [1000] * 10


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "cifar10-jpeg" / "materialize.py").is_file(),
                    reason="the JPEG copy of CIFAR-10 is not in ../shared/data")
def test_cifar10c_lff_rule_is_lffs_map_on_cifar10_labels(tmp_path):
    """Corrupted CIFAR-10's canonical conflict rule is LfF's make_attr_labels on the 50,000 training labels in
    file order, at every ratio, and with the aligned share 0.1 on the 10,000 test labels."""
    from decimal import Decimal

    from biasbench.generators.assign import Assignment
    from biasbench.protocol import CIFAR10C
    from lff_reference import lff_attr_labels

    subprocess.run([sys.executable, str(SHARED_DATA / "cifar10-jpeg" / "materialize.py"), str(tmp_path)], check=True,
                   capture_output=True)
    source = cifar10.load_cifar10(tmp_path, allow_unverified=True)
    plan = Assignment(source.train_labels, source.test_labels, 0, "cifar10c", CIFAR10C.valid_size, "corruption")
    assert (len(plan.train_index), len(plan.valid_index)) == (45000, 5000)
    for ratio in ("0.005", "0.01", "0.02", "0.05"):
        lff = lff_attr_labels(source.train_labels, 1.0 - float(ratio))
        assert np.array_equal(plan.train_attributes(Decimal(ratio)), lff[plan.train_index])
        assert np.isin(np.flatnonzero(lff != source.train_labels), plan.train_index).all()
    assert np.array_equal(plan.unbiased_attributes("test"), lff_attr_labels(source.test_labels, 0.1))
