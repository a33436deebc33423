"""The registries own their entries: what tables, figures, exports and reports need comes from each entry."""

from __future__ import annotations

from decimal import Decimal

from biasbench import baselines, generators
from biasbench.results import plots


def test_every_method_entry_names_and_colours_itself_and_says_what_it_needs():
    for name in baselines.ordered():
        cls = baselines.get(name)
        assert cls.display_name and cls.colour, name
        assert isinstance(cls.uses_bias_labels, bool) and isinstance(cls.length_free, bool)
    length_free = {m for m in baselines.ordered() if baselines.get(m).length_free}
    assert length_free == {"erm", "reweighted_erm", "lff", "groupdro"}  # no schedule, no stage shares
    assert plots.SPARSE_STYLE == {"rigl": ("tab:blue", "RigL"), "rest": ("tab:red", "REST"),
                                  "mrm": ("tab:purple", "MRM")}
    assert set(plots.DENSE_STYLE) == {"erm", "reweighted_erm"}
    assert sorted(baselines.ordered()) == baselines.names()


def test_every_dataset_entry_carries_its_export_layouts_and_whether_it_fits_a_cpu():
    tags = {}
    for name in generators.ordered():
        g = generators.get(name)
        assert len(g.export_layout.lff_attr_names) == 2 and isinstance(g.fits_cpu, bool)
        tags[name] = g.lff_tag({"severity": 5, "corruptions": ()}, Decimal("0.01"))
    assert tags == {"cmnist": "ColoredMNIST-Skewed0.01-Severity5", "cifar10c": "CorruptedCIFAR10-Type1-Skewed0.01-Severity4",
                    "bffhq": "BFFHQ-Skewed0.01"}
    assert [n for n in generators.ordered() if generators.get(n).fits_cpu] == ["cmnist"]
