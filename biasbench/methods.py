"""The method registry: one line per method (its module under baselines/ and how tables and figures show it).

Adding a method = one module under baselines/ defining a `Method` subclass + one `METHODS.add` line here.
The name is the public API (`--method NAME`); results/ and the CLI find methods here, never in baselines/.
"""

from __future__ import annotations

from dataclasses import dataclass

from biasbench.registry import Registry


@dataclass(frozen=True)
class Display:
    """How tables and figures show a method (not part of training)."""

    name: str  # in tables and legends
    colour: str  # a matplotlib colour
    reference_line: bool = False  # drawn as a dense reference line in density plots (ERM, reweighted ERM)


def _spell(name: str) -> str:
    return name.lower().replace("-", "_")  # `Reweighted-ERM` is `reweighted_erm`


METHODS = Registry("method", _spell)
_B = "biasbench.baselines."
METHODS.add("erm", _B + "erm:METHOD", Display("ERM", "tab:green", reference_line=True))
METHODS.add("reweighted_erm", _B + "reweighted_erm:METHOD", Display("reweighted ERM", "tab:olive", reference_line=True))
METHODS.add("lff", _B + "lff:METHOD", Display("LfF", "tab:orange"))
METHODS.add("disent", _B + "disent:METHOD", Display("DisEnt", "tab:brown"))
METHODS.add("rigl", _B + "rigl:METHOD", Display("RigL", "tab:blue"))
METHODS.add("rest", _B + "rest:METHOD", Display("REST", "tab:red"))
METHODS.add("mrm", _B + "mrm:METHOD", Display("MRM", "tab:purple"))
METHODS.add("groupdro", _B + "groupdro:METHOD", Display("GroupDRO", "tab:pink"))
METHODS.add("jtt", _B + "jtt:METHOD", Display("JTT", "tab:cyan"))

names, ordered, canonical, get = METHODS.names, METHODS.ordered, METHODS.canonical, METHODS.get


def display(name: str) -> Display:
    return METHODS.info(name)
