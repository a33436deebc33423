"""The registries own their entries: what tables, figures, exports, reports and profiles need comes from each
entry, and every entry has it. Checked per entry, so a new method or dataset is covered by its registry line."""

from __future__ import annotations

from decimal import Decimal

import matplotlib.colors
import pytest

from biasbench import datasets, methods
from biasbench.errors import UserError
from biasbench.launch import LAUNCHERS
from biasbench.registry import Registry
from biasbench.results import plots
from biasbench.training.method import Method


@pytest.mark.parametrize("name", methods.ordered())
def test_every_method_entry_loads_a_method_and_names_and_colours_itself(name):
    cls, shown = methods.get(name), methods.display(name)
    assert issubclass(cls, Method) and shown.name and matplotlib.colors.is_color_like(shown.colour)
    assert isinstance(cls.uses_bias_labels, bool) and isinstance(cls.length_free, bool)
    assert not (cls.length_free and cls.uses_density), "a sparse schedule depends on the run's length"
    assert methods.canonical(name.upper().replace("_", "-")) == name
    # figures draw each sparse method as a curve and each dense reference as a line, in its own colour
    if cls.uses_density:
        assert plots.SPARSE_STYLE[name] == (shown.colour, shown.name)
    assert (name in plots.DENSE_STYLE) == (shown.reference_line and not cls.uses_density)


def test_display_is_not_part_of_the_training_interface():
    for attribute in ("display_name", "colour", "reference_line"):
        assert not any(hasattr(methods.get(m), attribute) for m in methods.ordered()), attribute


@pytest.mark.parametrize("name", datasets.ordered())
def test_every_dataset_entry_carries_its_export_layouts_family_and_whether_it_fits_a_cpu(name):
    g, info = datasets.get(name), datasets.DATASETS.info(name)
    assert g.name == name and len(g.export_layout.lff_attr_names) == 2 and isinstance(g.fits_cpu, bool)
    assert g.lff_tag({"severity": 5, "corruptions": ()}, Decimal("0.01"))
    assert info.family in datasets.FAMILIES and info.image_size > 0 and info.channels in (1, 3)


@pytest.mark.parametrize("name", LAUNCHERS.ordered())
def test_every_launcher_entry_is_a_factory(name):
    assert callable(LAUNCHERS.get(name))


def test_a_registry_says_the_choices_in_one_line_and_refuses_a_second_entry_under_one_name():
    reg = Registry("widget")
    reg.add("a", "biasbench.errors:UserError")
    assert reg.get("A") is UserError and reg.names() == ["a"]
    with pytest.raises(UserError, match="unknown widget 'b'; choose one of: a"):
        reg.get("b")
    with pytest.raises(ValueError):
        reg.add("a", object())

    @reg.register("c", info=3)
    class C:
        pass

    assert reg.get("c") is C and reg.info("c") == 3 and reg.ordered() == ["a", "c"]
