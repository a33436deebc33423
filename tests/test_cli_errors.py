"""Every user mistake: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from biasbench.cli import main
from conftest import cli, synthetic_mnist, write_mnist
from helpers import run, assert_one_line_error


@pytest.fixture
def src(tmp_path):
    return write_mnist(tmp_path / "src", synthetic_mnist(6000, 100))


def test_unknown_dataset(capsys, tmp_path):
    code, _, err = run(capsys, "generate", "imagenet", "--out", str(tmp_path))
    assert_one_line_error(code, err, "unknown dataset 'imagenet'", "cmnist")


@pytest.mark.parametrize("ratio,needle", [("0", "strictly between"), ("1.5", "strictly between"), ("abc", "not a number")])
def test_bad_ratio(capsys, tmp_path, src, ratio, needle):
    code, _, err = run(capsys, "generate", "cmnist", "--ratio", ratio, "--out", str(tmp_path), "--source-dir", str(src))
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "cmnist").exists()  # rejected before touching the disk


def test_unwritable_out(capsys, tmp_path, src):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run(capsys, "generate", "cmnist", "--out", str(blocker / "sub"), "--source-dir", str(src))
    assert_one_line_error(code, err, "cannot write to", "--out")


def test_missing_source_files(capsys, tmp_path, src):
    (src / "train-labels-idx1-ubyte.gz").unlink()
    code, _, err = run(capsys, "generate", "cmnist", "--out", str(tmp_path / "o"), "--source-dir", str(src), "--allow-unverified")
    assert_one_line_error(code, err, "train-labels-idx1-ubyte", "not found")


def test_source_dir_that_does_not_exist(capsys, tmp_path):
    code, _, err = run(capsys, "generate", "cmnist", "--out", str(tmp_path), "--source-dir", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "does not exist")


def test_truncated_gz(capsys, tmp_path, src):
    path = src / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    code, _, err = run(capsys, "generate", "cmnist", "--out", str(tmp_path / "o"), "--source-dir", str(src), "--allow-unverified")
    assert_one_line_error(code, err, "t10k-images-idx3-ubyte.gz", "truncated")


def test_wrong_checksum(capsys, tmp_path, src):
    code, _, err = run(capsys, "generate", "cmnist", "--out", str(tmp_path / "o"), "--source-dir", str(src))
    assert_one_line_error(code, err, "md5", "--allow-unverified")
    assert not (tmp_path / "o" / "cmnist" / "README.md").exists()


@pytest.mark.parametrize("args,needle", [(["--seed", "-1"], "--seed"), (["--workers", "0"], "--workers"),
                                         (["--seed", "x"], "invalid int"), (["--no-such-flag"], "unrecognized")])
def test_bad_options(capsys, tmp_path, src, args, needle):
    code, _, err = run(capsys, "generate", "cmnist", "--out", str(tmp_path), "--source-dir", str(src), *args)
    assert_one_line_error(code, err, needle)


def test_errors_are_one_line_in_a_real_process(tmp_path, src):
    result = cli("generate", "cmnist", "--ratio", "abc", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = cli("generate", "cmnist", "--out", str(tmp_path), "--source-dir", str(src))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "md5" in result.stderr


def test_help_teaches_datasets_ratios_defaults_and_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    for needle in ("cmnist", "0.5pct", "5pct", "default: all four", "BIASBENCH_DATA", "load_dataset", "examples"):
        assert needle in text, needle


def test_no_global_generators_or_baselines_package_is_installed(tmp_path):
    import subprocess
    import sys

    code = (
        "import importlib.util as u, json;"
        "print(json.dumps([u.find_spec(n) is not None for n in "
        "('generators', 'baselines', 'biasbench.generators', 'biasbench.baselines')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[false, false, true, true]"
