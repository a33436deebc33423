"""Dataset cards: the YAML header `datasets` reads, plus generic tables.

The header is derived from the complete configs on disk (explicit file lists
per split, so two configs can share the valid/test files), the features
from the schema, and dataset metadata from the generator. The prose is the
generator's.
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


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def header(configs: list[Config], schema: Schema, meta: CardMeta, placeholder: str | None = None) -> str:
    """The YAML front matter; `placeholder` first adds a config that names a file that does not exist."""
    largest = max((sum(i["num_examples"] for i in c.splits.values()) for c in configs), default=0)
    doc = {
        "pretty_name": meta.pretty_name,
        "license": meta.license,
        "task_categories": ["image-classification"],
        "tags": list(meta.tags),
        "size_categories": [_size_category(largest)],
        **meta.extra,
        "configs": [
            {
                "config_name": c.name,
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
