"""The scoring engine: pure functions from a catalog version and per-metric counts to a score.

No I/O and no clock: given the same version and counts it always gives the same score, so the
API, the worker and the tests share it. Rates are never averaged: a quarter is scored from the
SUMMED numerators and denominators of its months (:func:`aggregate`), not from monthly scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from app.indicators.catalog import (
    CatalogVersion,
    Component,
    EmptyDenominator,
    GradeBand,
    Metric,
    Rule,
)
from app.indicators.periods import Period

ZERO = Decimal(0)
CENT = Decimal("0.01")
_PRECISION = 40  # well beyond two published decimals for any realistic count


@dataclass(frozen=True, slots=True)
class Counts:
    """A numerator over a denominator, as submitted or computed for one period."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if self.numerator < 0 or self.denominator < 0:
            raise ValueError(f"counts must not be negative: {self.numerator}/{self.denominator}")

    @property
    def rate(self) -> Decimal | None:
        """numerator ÷ denominator; None when the denominator is 0 (nothing to measure)."""
        if self.denominator == 0:
            return None
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            return Decimal(self.numerator) / Decimal(self.denominator)


def aggregate(counts: Iterable[Counts]) -> Counts | None:
    """Sum numerators and denominators (a quarter from its months); None when there is nothing."""
    parts = list(counts)
    if not parts:
        return None
    return Counts(sum(c.numerator for c in parts), sum(c.denominator for c in parts))


def resolve_period_counts(
    period: Period, submitted: Mapping[tuple[Period, str], Counts]
) -> dict[str, Counts]:
    """Counts per code for ``period`` from one unit's submissions keyed ``(period, code)``.

    A direct submission for the period takes precedence; otherwise its parts are summed, each
    resolved the same way (a year from its quarters, a quarter from its months). Parts without
    data are left out of the sum; a code with no data anywhere in the period is absent.
    """
    codes = {code for (part, code) in submitted if _within(part, period)}
    resolved: dict[str, Counts] = {}
    for code in sorted(codes):
        counts = _resolve(period, code, submitted)
        if counts is not None:
            resolved[code] = counts
    return resolved


def _within(inner: Period, outer: Period) -> bool:
    return outer.first_day <= inner.first_day and inner.last_day <= outer.last_day


def _resolve(
    period: Period, code: str, submitted: Mapping[tuple[Period, str], Counts]
) -> Counts | None:
    direct = submitted.get((period, code))
    if direct is not None:
        return direct
    parts = (_resolve(part, code, submitted) for part in period.parts())
    return aggregate(c for c in parts if c is not None)


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComponentScore:
    """One term of a composite metric: min(cap, coefficient × rate), or None without data."""

    code: str
    counts: Counts | None
    points: Decimal | None


@dataclass(frozen=True, slots=True)
class MetricScore:
    code: str
    max_points: Decimal
    counts: Counts | None  # None for a composite (see components) or without data
    points: Decimal | None  # None: no data — shown as missing, never as 0
    components: tuple[ComponentScore, ...] = ()

    @property
    def missing(self) -> bool:
        return self.points is None

    @property
    def missing_components(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.components if c.counts is None)


@dataclass(frozen=True, slots=True)
class GroupScore:
    code: str
    max_points: Decimal
    points: Decimal | None  # rounded to 2 decimals; None when no metric of the group has data
    completeness: Decimal
    metrics: tuple[MetricScore, ...]


@dataclass(frozen=True, slots=True)
class Score:
    """A unit's score for one period under one catalog version.

    ``total`` is the sum of the unrounded metric points, rounded half-up to two decimals (so
    the rounded group points may differ from it by a cent). Missing metrics add nothing and
    lower ``completeness`` (the share of the 100 points whose metrics have data); ``grade``
    is given only for a complete score, since a partial total says nothing about the grade.
    """

    version: str
    total: Decimal | None
    grade: GradeBand | None
    completeness: Decimal
    groups: tuple[GroupScore, ...]

    @property
    def complete(self) -> bool:
        return self.completeness == 1

    @property
    def missing(self) -> tuple[str, ...]:
        """Codes of the metrics without (complete) data, in catalog order."""
        return tuple(m.code for g in self.groups for m in g.metrics if m.missing)

    def group(self, code: str) -> GroupScore:
        return next(g for g in self.groups if g.code == code)

    def metric(self, code: str) -> MetricScore:
        return next(m for g in self.groups for m in g.metrics if m.code == code)


def round_points(points: Decimal) -> Decimal:
    """Published precision: two decimals, half-up (0.125 → 0.13)."""
    return points.quantize(CENT, rounding=ROUND_HALF_UP)


# --- the engine ------------------------------------------------------------------------


def ratio_points(
    max_points: Decimal,
    counts: Counts,
    empty: EmptyDenominator,
    threshold: Decimal | None = None,
) -> Decimal:
    """``max × rate`` (linear) or ``max × rate / threshold`` (threshold), never above ``max``."""
    if counts.denominator == 0:
        return max_points if empty is EmptyDenominator.full else ZERO
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        raw = max_points * counts.numerator / counts.denominator
        if threshold is not None:
            raw = raw / threshold
    return min(max_points, raw)


def component_points(component: Component, counts: Counts) -> Decimal:
    """``min(cap, coefficient × rate)``; a rate above 1 earns no more than a rate of 1."""
    term = ratio_points(component.coefficient, counts, component.empty_denominator)
    return term if component.cap is None else min(component.cap, term)


def metric_score(metric: Metric, counts_by_code: Mapping[str, Counts | None]) -> MetricScore:
    if metric.rule is Rule.tttt_composite:
        components = tuple(
            ComponentScore(
                code=c.code,
                counts=counts_by_code.get(c.code),
                points=_component(c, counts_by_code.get(c.code)),
            )
            for c in metric.components
        )
        terms = [c.points for c in components]
        points = (
            None
            if any(t is None for t in terms)
            else min(metric.max_points, sum((t for t in terms if t is not None), ZERO))
        )
        return MetricScore(metric.code, metric.max_points, None, points, components)
    counts = counts_by_code.get(metric.code)
    if counts is None:
        return MetricScore(metric.code, metric.max_points, None, None)
    assert metric.empty_denominator is not None  # set for every non-composite rule
    if _unmeasured(counts, metric.empty_denominator):
        return MetricScore(metric.code, metric.max_points, counts, None)
    threshold = metric.threshold if metric.rule is Rule.threshold else None
    points = ratio_points(metric.max_points, counts, metric.empty_denominator, threshold)
    return MetricScore(metric.code, metric.max_points, counts, points)


def points_of(metric: Metric, component: Component | None, counts: Counts) -> Decimal | None:
    """What ``counts`` would earn for one metric (or one component's term) alone: to show the
    value that did not score beside the one that did."""
    if component is not None:
        return _component(component, counts)
    return metric_score(metric, {metric.code: counts}).points


def _component(component: Component, counts: Counts | None) -> Decimal | None:
    if counts is None or _unmeasured(counts, component.empty_denominator):
        return None
    return component_points(component, counts)


def _unmeasured(counts: Counts, empty: EmptyDenominator | None) -> bool:
    """Nothing to measure, and the catalog says that is missing data (never 0 points)."""
    return counts.denominator == 0 and empty is EmptyDenominator.missing


def score(version: CatalogVersion, counts_by_code: Mapping[str, Counts | None]) -> Score:
    """Score one unit for one period. ``counts_by_code`` is keyed by the catalog's counted codes
    (metric codes, component codes for a composite); absent or None means no data. Codes the
    version does not know are ignored."""
    groups: list[GroupScore] = []
    exact_total = ZERO
    covered = ZERO
    total_max = ZERO
    for group in version.groups:
        metrics = tuple(metric_score(m, counts_by_code) for m in group.metrics)
        scored = [m for m in metrics if m.points is not None]
        group_exact = sum((m.points for m in scored if m.points is not None), ZERO)
        group_covered = sum((m.max_points for m in scored), ZERO)
        groups.append(
            GroupScore(
                code=group.code,
                max_points=group.max_points,
                points=round_points(group_exact) if scored else None,
                completeness=group_covered / group.max_points,
                metrics=metrics,
            )
        )
        exact_total += group_exact
        covered += group_covered
        total_max += group.max_points
    completeness = covered / total_max
    total = round_points(exact_total) if covered else None
    grade = version.grade_for(total) if total is not None and completeness == 1 else None
    return Score(
        version=version.version,
        total=total,
        grade=grade,
        completeness=completeness,
        groups=tuple(groups),
    )
