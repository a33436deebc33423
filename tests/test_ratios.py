from decimal import Decimal

import pytest

from biasbench.errors import UserError
from biasbench.ratios import config_name, count_for, parse_ratio, parse_ratios, ratio_from_config


@pytest.mark.parametrize(
    "text,expected",
    [("0.01", "0.01"), ("1%", "0.01"), ("1pct", "0.01"), ("0.5%", "0.005"), ("0.5pct", "0.005"),
     ("0.050", "0.05"), (" 2 % ", "0.02"), ("7%", "0.07")],
)
def test_parse_ratio_accepts_fractions_and_percentages(text, expected):
    assert parse_ratio(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["0", "1", "1.5", "-0.01", "abc", "", "100%", "nan", "inf", "0pct"])
def test_parse_ratio_rejects_values_outside_the_open_interval(text):
    with pytest.raises(UserError):
        parse_ratio(text)


def test_parse_ratios_all_and_lists():
    assert [config_name(r) for r in parse_ratios("all")] == ["0.5pct", "1pct", "2pct", "5pct"]
    assert [config_name(r) for r in parse_ratios("5%,0.005,1pct,0.01")] == ["0.5pct", "1pct", "5pct"]
    with pytest.raises(UserError):
        parse_ratios(",")


@pytest.mark.parametrize("ratio,name", [("0.005", "0.5pct"), ("0.01", "1pct"), ("0.07", "7pct"), ("0.025", "2.5pct"),
                                        ("0.1", "10pct")])
def test_config_names_round_trip(ratio, name):
    assert config_name(Decimal(ratio)) == name
    assert ratio_from_config(name) == Decimal(ratio)


def test_count_rounds_halves_up_exactly():
    assert count_for(5923, Decimal("0.005")) == 30  # 29.615
    assert count_for(100, Decimal("0.005")) == 1  # 0.5 -> 1 (Python's round would give 0)
    assert count_for(300, Decimal("0.005")) == 2  # 1.5 -> 2
    assert count_for(700, Decimal("0.005")) == 4  # 3.5 -> 4 (round() gives 4 too)
    assert count_for(900, Decimal("0.005")) == 5  # 4.5 -> 5 (round() gives 4)
