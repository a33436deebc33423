"""Dataset cards: the YAML header `datasets` reads, the sections every card shares, and generic tables.

The header is derived from the complete configs on disk (explicit file lists
per split, so two configs can share the valid/test files), the features
from the schema, and dataset metadata from the generator. The prose is the
generator's; the install, load and cite sections are written here once for
every dataset (`usage`, `citation`), and `render` puts the Hub repo id into
the load snippet when the card is staged for `publish --repo-id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from biasbench.dataset_format.folder import Config
from biasbench.dataset_format.schema import Schema


@dataclass(frozen=True)
class CardMeta:
    pretty_name: str
    license: str
    tags: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    # Hub fields: what the dataset is derived from ("extended|<source>") and who made its labels: the class
    # labels are the source's ("found"), the bias labels are made by the construction ("machine-generated").
    source_datasets: tuple[str, ...] = ()
    annotations_creators: tuple[str, ...] = ("found", "machine-generated")


# The distribution on PyPI is not yet published: the install line says what works today (from a checkout or
# a built wheel), and names the distribution (pyproject's [project] name) for when it is.
DISTRIBUTION = "biasbench-spurious"
# No public repository URL is known for biasbench; the card says so rather than link a placeholder.
PROJECT_URL: str | None = None
# The config `load_dataset(repo)` opens without a config name: 1 % is the ratio the references' figures and
# this project's sweeps use; a folder without it defaults to its first config.
DEFAULT_CONFIG = "1pct"
# What the load snippet names before a repo id is known; `render(..., repo_id)` replaces it.
REPO_TOKEN = "PATH_OR_REPO"


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def default_config(configs: list[Config]) -> str | None:
    """The config marked `default: true`: DEFAULT_CONFIG where present, else the first."""
    names = [c.name for c in configs]
    return DEFAULT_CONFIG if DEFAULT_CONFIG in names else (names[0] if names else None)


def header(configs: list[Config], schema: Schema, meta: CardMeta, placeholder: str | None = None) -> str:
    """The YAML front matter; `placeholder` first adds a config that names a file that does not exist
    (and is then the default, so that loading without a config name fails while a build replaces units)."""
    largest = max((sum(i["num_examples"] for i in c.splits.values()) for c in configs), default=0)
    default = None if placeholder else default_config(configs)
    doc = {
        "pretty_name": meta.pretty_name,
        "license": meta.license,
        "task_categories": ["image-classification"],
        "task_ids": ["multi-class-image-classification"],
        "annotations_creators": list(meta.annotations_creators),
        **({"source_datasets": list(meta.source_datasets)} if meta.source_datasets else {}),
        "tags": list(meta.tags),
        "size_categories": [_size_category(largest)],
        **meta.extra,
        "configs": [
            {
                "config_name": c.name,
                **({"default": True} if c.name == default else {}),
                "data_files": [{"split": s, "path": c.files(s)} for s in c.splits],
            }
            for c in configs
        ],
        "dataset_info": [
            {
                "config_name": c.name,
                "features": schema.yaml_features(),
                "splits": [
                    {"name": s, "num_bytes": i["num_bytes"], "num_examples": i["num_examples"]}
                    for s, i in c.splits.items()
                ],
            }
            for c in configs
        ],
    }
    if placeholder:
        doc["configs"].insert(0, {"config_name": placeholder, "default": True,
                                  "data_files": [{"split": "train", "path": f"data/.{placeholder}/none.parquet"}]})
    return "---\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def counts_table(config: Config, label_names: tuple[str, ...]) -> str:
    """Markdown: per split, aligned / conflicting counts per class."""
    head = "| split | " + " | ".join(label_names) + " | total |"
    rule = "|---" * (len(label_names) + 2) + "|"
    lines = [head, rule]
    for split, info in config.splits.items():
        a, c = info["counts"]["aligned"], info["counts"]["conflicting"]
        cells = [f"{x} / {y}" for x, y in zip(a, c)]
        lines.append(f"| {split} | " + " | ".join(cells) + f" | {sum(a)} / {sum(c)} |")
    return "\n".join(lines)


def usage(dataset: str, configs: list[Config], version: str | None = None) -> list[str]:
    """The card's Install and Load sections (markdown lines): what works today, the default config, the splits."""
    version = version or _version()
    default = default_config(configs)
    where = ("biasbench's public repository URL is not published yet" if PROJECT_URL is None
             else f"[biasbench]({PROJECT_URL})")
    others = [c.name for c in configs if c.name != default]
    return [
        "## Install", "",
        f"biasbench {version} is not on PyPI yet ({where}). From a biasbench checkout, build the wheel and "
        "install it, or install the checkout itself:", "",
        "```bash",
        "python -m pip install build && python -m build        # dist/*.whl and dist/*.tar.gz",
        f"pip install dist/{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl   # or: pip install .",
        f"biasbench generate {dataset} --ratio all",
        "```", "",
        f"The distribution is named `{DISTRIBUTION}` (`bias-bench` is another project's); the import package "
        "and the command are `biasbench`.", "",
        "## Load", "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{REPO_TOKEN}", "{default}")',
        f'ds = load_dataset("{REPO_TOKEN}")  # the same: {default} is the default config',
        "```", "",
        f"Configs: {', '.join(c.name for c in configs)}. `{default}` is marked `default: true` in this card's "
        "header, so `load_dataset` without a config name opens it"
        + (f"; name another ({', '.join(others)}) to load it." if others else "."), "",
        "The splits are `train`, `valid` and `test`. The held-out split keeps the name `valid` of LfF's and DisEnt's "
        "releases (and of biasbench's run records and leaderboards) rather than the Hub's usual `validation`, so "
        "that code written for those layouts reads it unchanged.", "",
    ]


def _version() -> str:
    from biasbench import __version__

    return __version__


def citation(dataset: str, pretty_name: str, version: str | None = None) -> list[str]:
    """A BibTeX entry for this dataset as built by biasbench (cite the sources' papers beside it)."""
    version = version or _version()
    url = f",\n  url          = {{{PROJECT_URL}}}" if PROJECT_URL else ""
    return [
        "To cite this dataset as built here (with the source and method papers below):", "",
        "```bibtex",
        f"@misc{{biasbench_{dataset},",
        f"  title        = {{{{{pretty_name}}}: a deterministic build by biasbench}},",
        "  author       = {{biasbench contributors}},",
        f"  howpublished = {{biasbench {version}: biasbench generate {dataset}}},",
        f"  note         = {{Content fingerprints per config are listed in this card and in manifest.json}}{url}",
        "}",
        "```", "",
    ]


def render(generator, configs: list[Config], repo_id: str | None = None) -> str:
    """The whole card: header and the generator's prose, the load snippet naming REPO_ID (or, for a local
    folder, `path/to/DATASET`)."""
    text = header(configs, generator.schema, generator.card_meta) + generator.card_body(configs)
    return text.replace(f'"{REPO_TOKEN}"', f'"{repo_id or "path/to/" + generator.name}"')
