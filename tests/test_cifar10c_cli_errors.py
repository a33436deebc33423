"""Corrupted CIFAR-10 source problems reach the user as one line and exit code 2 (the reader's own tests
check the UserErrors; these check what `biasbench generate cifar10c` prints)."""

from __future__ import annotations

import pytest

from helpers import assert_one_line_error, run
from helpers import fake_batches, write_folder


@pytest.fixture
def src(tmp_path):
    return write_folder(tmp_path / "src", fake_batches(4))


def generate(capsys, src, tmp_path, *extra):
    return run(capsys, "generate", "cifar10c", "--ratio", "1pct", "--source-dir", str(src), "--out",
               str(tmp_path / "out"), "--workers", "1", *extra)


def test_wrong_md5(capsys, src, tmp_path):
    code, _, err = generate(capsys, src, tmp_path)
    assert_one_line_error(code, err, "data_batch_1", "md5", "--allow-unverified")
    assert not (tmp_path / "out" / "cifar10c" / "README.md").exists()


def test_missing_batch_file(capsys, src, tmp_path):
    (src / "cifar-10-batches-py" / "data_batch_3").unlink()
    code, _, err = generate(capsys, src, tmp_path, "--allow-unverified")
    assert_one_line_error(code, err, "data_batch_3", "not found")


def test_crafted_pickle_is_refused_without_running_code(capsys, src, tmp_path):
    marker = tmp_path / "pwned"
    command = f"touch {marker}".encode()
    crafted = b"\x80\x02cos\nsystem\nq\x00X" + len(command).to_bytes(4, "little") + command + b"\x85R."
    (src / "cifar-10-batches-py" / "data_batch_2").write_bytes(crafted)
    code, _, err = generate(capsys, src, tmp_path, "--allow-unverified")
    assert_one_line_error(code, err, "data_batch_2", "refused to unpickle", "os.system")
    assert not marker.exists()


def test_corrupted_pickle(capsys, src, tmp_path):
    path = src / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:300])
    code, _, err = generate(capsys, src, tmp_path, "--allow-unverified")
    assert_one_line_error(code, err, "test_batch", "not a readable CIFAR-10 batch")
