"""Where a total lands among its peers, and the rounding figures are published with: shared by
the what-if planner and the month-end projection."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
RATE = Decimal("0.0001")


def peers_above(totals: list[Decimal], total: Decimal) -> int:
    """How many of the peers' totals are strictly above ``total`` (its rank is one more)."""
    return sum(1 for t in totals if t > total)


def cents(value: Decimal | None) -> Decimal:
    return (value or Decimal(0)).quantize(CENT, ROUND_HALF_UP)
