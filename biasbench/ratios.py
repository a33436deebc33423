"""Bias-conflicting ratios: parsing user input and naming configs.

Ratios are kept as exact decimals so that 0.07 is 0.07 (not
0.07000000000000001) in config names, cards and counts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from biasbench.errors import UserError

STANDARD_RATIOS: tuple[Decimal, ...] = (
    Decimal("0.005"),
    Decimal("0.01"),
    Decimal("0.02"),
    Decimal("0.05"),
)


def parse_ratio(text: str) -> Decimal:
    """'0.01', '1%', '1pct' -> Decimal('0.01'). Raises UserError otherwise."""
    raw = text.strip().lower()
    percent = raw.endswith("%") or raw.endswith("pct")
    number = raw.rstrip("%").removesuffix("pct").strip()
    try:
        value = Decimal(number)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise UserError(
            f"ratio {text!r} is not a number: use a fraction (0.01), a percentage (1%, 1pct), "
            "a comma list, or 'all'"
        )
    if percent:
        value = value / 100
    if not Decimal(0) < value < Decimal(1):
        raise UserError(
            f"ratio {text!r} must lie strictly between 0 and 1 as a fraction "
            "(e.g. 0.01) or between 0% and 100% as a percentage (e.g. 1%)"
        )
    return value.normalize()


def parse_ratios(text: str) -> list[Decimal]:
    """'all', one ratio, or a comma list -> sorted unique ratios."""
    if text.strip().lower() == "all":
        return list(STANDARD_RATIOS)
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError("no ratio given: use e.g. --ratio 0.01, --ratio 1%,5% or --ratio all")
    return sorted({parse_ratio(p) for p in parts})


def config_name(ratio: Decimal) -> str:
    """0.005 -> '0.5pct', 0.01 -> '1pct'."""
    percent = (ratio * 100).normalize()
    return f"{percent:f}pct"


def ratio_from_config(name: str) -> Decimal:
    """Inverse of `config_name`."""
    if not name.endswith("pct"):
        raise UserError(f"{name!r} is not a config name like '1pct'")
    return parse_ratio(name)


def count_for(n: int, ratio: Decimal) -> int:
    """round(n * ratio) with halves rounded up, exactly (no float error)."""
    return int((Decimal(n) * ratio).to_integral_value(rounding=ROUND_HALF_UP))
