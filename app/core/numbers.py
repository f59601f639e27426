"""How numbers go out: points and rates as JSON numbers, rounded as they are published.

Every answer that carries a score (rankings, scorecards, history, what-if, projections, webhook
payloads) writes its figures through this module, so a client reads one format everywhere:

- **points** (totals, group and metric points, maxima, points lost, score changes and
  differences): a JSON number rounded half-up to two decimals (98.125 → 98.13);
- **rates** (a metric's rate, the rate that earns full marks, completeness, shares): a
  **percentage** from 0 to 100 (above 100 only where a metric allows a numerator above its
  denominator), a JSON number rounded half-up to two decimals (3 of 12 → 25, 2 of 3 → 66.67);
- **ranks**: integers, with the number ranked beside them as ``of`` (never ``"10/34"``).

Values stay :class:`~decimal.Decimal` inside the service (exact arithmetic); only the JSON
rendering turns them into numbers. Pydantic renders a ``Decimal`` as a string in JSON, so wire
shapes use the annotated types below, whose OpenAPI schema says ``number``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
_HUNDRED = Decimal(100)


def rounded(value: Decimal | float | int | str, places: int = 2) -> Decimal:
    """``value`` rounded half-up to ``places`` decimals (floats through their shortest text)."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def number(value: Decimal | float | int | str | None, places: int = 2) -> float | None:
    """The JSON number of a figure, rounded half-up to ``places`` decimals (None stays null)."""
    return None if value is None else float(rounded(value, places))


def percent(fraction: Decimal | float | int | str | None) -> Decimal | None:
    """A rate held as a fraction (0.25), as the percentage it is published as (25.00)."""
    if fraction is None:
        return None
    exact = fraction if isinstance(fraction, Decimal) else Decimal(str(fraction))
    return rounded(exact * _HUNDRED)


def share(numerator: int, denominator: int) -> Decimal:
    """``numerator ÷ denominator`` (a denominator above 0) as a percentage, two decimals."""
    return rounded(Decimal(numerator) * _HUNDRED / Decimal(denominator))


def rate(numerator: int | None, denominator: int | None) -> Decimal | None:
    """A metric's rate as a percentage, two decimals; None without a denominator."""
    return share(numerator or 0, denominator) if denominator else None


def _two(value: Decimal) -> float | None:
    return number(value, 2)


def _four(value: Decimal) -> float | None:
    return number(value, 4)


Points = Annotated[
    Decimal,
    PlainSerializer(_two, return_type=float, when_used="json"),
    WithJsonSchema(
        {"type": "number", "description": "Points, rounded half-up to two decimals as published"}
    ),
]
Percent = Annotated[
    Decimal,
    PlainSerializer(_two, return_type=float, when_used="json"),
    WithJsonSchema(
        {
            "type": "number",
            "description": "A rate as a percentage (25 = 25 %), rounded half-up to two "
            "decimals; above 100 only where the metric allows a numerator above its denominator",
        }
    ),
]
# Finer than published points: what one more dossier (procedure, rating…) is worth.
PointsPerUnit = Annotated[
    Decimal,
    PlainSerializer(_four, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "description": "Points per additional unit, four decimals"}),
]
