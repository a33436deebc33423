"""The columns every biasbench dataset has, in the three forms they are needed.

Arrow schema (to write parquet), the `datasets` Features dict (stored in the
parquet metadata) and the card's `dataset_info.features` YAML all come from
one description, so they cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

COLUMNS = ("image", "label", "bias_label", "aligned", "source_index")


@dataclass(frozen=True)
class Schema:
    label_names: tuple[str, ...]
    bias_names: tuple[str, ...]

    def arrow(self) -> pa.Schema:
        image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        fields = [
            pa.field("image", image),
            pa.field("label", pa.int64()),
            pa.field("bias_label", pa.int64()),
            pa.field("aligned", pa.bool_()),
            pa.field("source_index", pa.int64()),
        ]
        meta = {b"huggingface": json.dumps({"info": {"features": self.hf_features()}}, sort_keys=True).encode()}
        return pa.schema(fields, metadata=meta)

    def hf_features(self) -> dict:
        """`datasets.Features.to_dict()` form."""
        return {
            "image": {"_type": "Image"},
            "label": {"_type": "ClassLabel", "names": list(self.label_names)},
            "bias_label": {"_type": "ClassLabel", "names": list(self.bias_names)},
            "aligned": {"_type": "Value", "dtype": "bool"},
            "source_index": {"_type": "Value", "dtype": "int64"},
        }

    def yaml_features(self) -> list[dict]:
        """The card header's `dataset_info.features` form."""

        def class_label(names: tuple[str, ...]) -> dict:
            return {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}}

        return [
            {"name": "image", "dtype": "image"},
            {"name": "label", "dtype": class_label(self.label_names)},
            {"name": "bias_label", "dtype": class_label(self.bias_names)},
            {"name": "aligned", "dtype": "bool"},
            {"name": "source_index", "dtype": "int64"},
        ]
