"""The dataset card a new user reads: an install line that works, no placeholder link, one default config that
`load_dataset` opens without a name, the Hub's optional fields, a BibTeX entry, the `valid` split explained;
and the project's LICENSE matching pyproject."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from biasbench.dataset_format import card
from biasbench.dataset_format.folder import DatasetFolder
from biasbench.generators import get

REPO = Path(__file__).resolve().parents[1]


def _card(root: Path) -> tuple[dict, str]:
    text = (root / "cmnist" / "README.md").read_text()
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def test_header_has_the_hub_fields_and_one_default_config(cmnist_root):
    head, _ = _card(cmnist_root)
    assert head["task_ids"] == ["multi-class-image-classification"]
    assert head["source_datasets"] == ["extended|mnist"]
    assert head["annotations_creators"] == ["found", "machine-generated"]
    assert [c["config_name"] for c in head["configs"] if c.get("default")] == ["1pct"]
    assert [c["config_name"] for c in head["configs"]] == ["0.5pct", "1pct", "5pct"]  # order = manifest's


def test_load_dataset_without_a_config_name_opens_the_default(cmnist_root):
    from datasets import load_dataset

    ds = load_dataset(str(cmnist_root / "cmnist"))
    named = load_dataset(str(cmnist_root / "cmnist"), "1pct")
    assert set(ds) == {"train", "valid", "test"} and len(ds["train"]) == len(named["train"])


def test_body_install_load_cite_sections(cmnist_root):
    _, body = _card(cmnist_root)
    assert "pip install biasbench==" not in body and "https://github.com/)" not in body
    assert "not on PyPI yet" in body and "public repository URL is not published yet" in body
    assert "pip install dist/biasbench_spurious-0.1.0-py3-none-any.whl" in body
    assert 'load_dataset("path/to/cmnist", "1pct")' in body and "PATH_OR_REPO" not in body
    assert "`1pct` is marked `default: true`" in body
    assert "keeps the name `valid`" in body and "`validation`" in body
    assert "@misc{biasbench_cmnist," in body and "@article{lecun1998mnist" in body
    assert body.index("## Install") < body.index("## Load") < body.index("## Structure")


def test_render_names_the_repo_id_and_a_folder_without_1pct_defaults_to_its_first(cmnist_root):
    gen = get("cmnist")
    configs = DatasetFolder(cmnist_root / "cmnist", "cmnist").configs()
    text = card.render(gen, configs, "me/cmnist")
    assert 'load_dataset("me/cmnist", "1pct")' in text and "path/to/cmnist" not in text
    others = [c for c in configs if c.name != "1pct"]
    assert card.default_config(others) == "0.5pct"
    head = yaml.safe_load(card.header(others, gen.schema, gen.card_meta).split("---\n")[1])
    assert [c["config_name"] for c in head["configs"] if c.get("default")] == ["0.5pct"]
    rebuilding = yaml.safe_load(card.header(configs, gen.schema, gen.card_meta, placeholder="x").split("---\n")[1])
    assert [c["config_name"] for c in rebuilding["configs"] if c.get("default")] == ["x"]  # only the placeholder


def test_licence_file_is_mit_as_pyproject_says():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    assert meta["name"] == card.DISTRIBUTION  # the card's install line names the distribution pyproject builds
