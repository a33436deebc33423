
import numpy as np
import pytest

from biasbench.errors import UserError
from biasbench.sources import mnist
from conftest import SHARED_MNIST, needs_shared_mnist, synthetic_mnist, write_mnist


@pytest.fixture
def official(monkeypatch):
    """Pretend the synthetic files are the official ones (their md5 become 'official')."""
    arrays = synthetic_mnist(300, 100)
    from conftest import idx_bytes
    from biasbench.sources.common import md5_hex

    monkeypatch.setattr(mnist, "OFFICIAL_MD5", {k: md5_hex(idx_bytes(v)) for k, v in arrays.items()})
    monkeypatch.setattr(mnist, "_SHAPES", {k: v.shape for k, v in arrays.items()})
    return arrays


@pytest.mark.parametrize("layout", ["flat-gz", "flat-raw", "torchvision"])
def test_reads_gz_raw_and_torchvision_layouts(tmp_path, official, layout):
    target = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    write_mnist(target, official, gz=layout != "flat-raw")
    source = mnist.load_mnist(tmp_path)
    assert source.verified
    assert np.array_equal(source.train_images, official["train-images-idx3-ubyte"])
    assert np.array_equal(source.test_labels, official["t10k-labels-idx1-ubyte"])
    assert source.train_labels.dtype == np.int64


def test_wrong_checksum_refuses_unless_allowed(tmp_path, official):
    arrays = dict(official)
    bad = arrays["train-images-idx3-ubyte"].copy()
    bad[0, 0, 0] ^= 1
    arrays["train-images-idx3-ubyte"] = bad
    write_mnist(tmp_path, arrays)
    with pytest.raises(UserError, match="md5.*--allow-unverified"):
        mnist.load_mnist(tmp_path)
    source = mnist.load_mnist(tmp_path, allow_unverified=True)
    assert not source.verified
    assert [f.verified for f in source.files] == [False, True, True, True]


def test_missing_file_is_named(tmp_path, official):
    write_mnist(tmp_path, official)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        mnist.load_mnist(tmp_path)


def test_truncated_gzip_is_a_user_error(tmp_path, official):
    write_mnist(tmp_path, official)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        mnist.load_mnist(tmp_path)


def test_truncated_idx_is_a_user_error():
    data = bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 100
    with pytest.raises(UserError, match="truncated"):
        mnist.parse_idx(data)
    with pytest.raises(UserError, match="not an IDX"):
        mnist.parse_idx(b"PK\x03\x04 not idx")


def test_offline_download_fails_with_one_line_naming_source_dir(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **k):
            raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    monkeypatch.delenv("BIASBENCH_SOURCES", raising=False)
    monkeypatch.setenv("BIASBENCH_SOURCES_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError) as info:
        mnist.resolve_mnist(None)
    assert "--source-dir" in str(info.value) and "\n" not in str(info.value)


def test_environment_variable_is_used_when_no_dir_given(tmp_path, official, monkeypatch):
    write_mnist(tmp_path, official)
    monkeypatch.setenv("BIASBENCH_SOURCES", str(tmp_path))
    assert mnist.resolve_mnist(None).verified


@needs_shared_mnist
def test_shared_copy_matches_official_checksums():
    source = mnist.load_mnist(SHARED_MNIST)
    assert source.verified
    assert source.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert source.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert source.train_images.shape == (60000, 28, 28)
