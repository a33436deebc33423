"""The parts import only downwards (README: cli -> everything; generators -> sources, format; training never
imports a method; the dataset format never imports a generator). Every import counts, also inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# part (its folder) -> the biasbench parts it must never import
FORBIDDEN = {
    "biasbench/training": ("biasbench.baselines", "biasbench.generators", "biasbench.results", "biasbench.launch",
                           "biasbench.cli", "biasbench.runner"),
    "biasbench/dataset_format": ("biasbench.hub", "biasbench.generators", "biasbench.training", "biasbench.baselines",
                                 "biasbench.results", "biasbench.launch", "biasbench.cli", "biasbench.runner"),
    "biasbench/hub": ("biasbench.generators", "biasbench.training", "biasbench.baselines", "biasbench.results",
                      "biasbench.launch", "biasbench.cli", "biasbench.runner"),
    "biasbench/sources": ("biasbench.generators", "biasbench.training", "biasbench.baselines",
                          "biasbench.dataset_format", "biasbench.hub", "biasbench.cli"),
    "generators": ("biasbench.training", "biasbench.baselines", "biasbench.results", "biasbench.launch",
                   "biasbench.cli", "biasbench.runner"),
    "baselines": ("biasbench.generators", "biasbench.results", "biasbench.launch", "biasbench.cli", "biasbench.runner"),
    "biasbench/results": ("biasbench.cli", "biasbench.launch", "biasbench.baselines"),  # methods via the registry
    "biasbench/runconfig.py": ("biasbench.baselines", "biasbench.generators", "biasbench.training", "biasbench.cli"),
    "biasbench/protocol": ("biasbench.",),  # data only
    # the registries: names and declared info, below everything that registers or looks up
    "biasbench/registry.py": ("biasbench.",),
    "biasbench/methods.py": ("biasbench.",),
    "biasbench/datasets.py": ("biasbench.",),
}
# what a part may import although FORBIDDEN's prefix covers it
ALLOWED = {
    "biasbench/protocol": ("biasbench.ratios", "biasbench.protocol.datasets", "biasbench.protocol.profiles",
                           "biasbench.datasets"),  # the dataset families
    "biasbench/registry.py": ("biasbench.errors",),
    "biasbench/methods.py": ("biasbench.registry",),
    "biasbench/datasets.py": ("biasbench.registry",),
}


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_never_imports_a_part_above_it(part):
    where = REPO / part
    files = [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))
    assert files
    bad = []
    for f in files:
        for name in imports(f):
            allowed = name in ALLOWED.get(part, ())
            if not allowed and any(name == p.rstrip(".") or name.startswith(p if p.endswith(".") else p + ".")
                                   for p in FORBIDDEN[part]):
                bad.append(f"{f.relative_to(REPO)} imports {name}")
    assert not bad, bad


def test_an_import_inside_a_function_counts(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def rebuild():\n    from biasbench.generators.build import generate\n    import biasbench.training.trainer\n")
    assert imports(f) == {"biasbench.generators.build", "biasbench.training.trainer"}
