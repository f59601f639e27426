"""The what-if planner: the cheapest set of metric improvements that lifts a total to a target.

Pure (no I/O): from a catalog version, a unit's counts for a period and the total needed.

*Cheapest* means the fewest additional numerator units — dossiers finished on time, procedures
published on time, satisfied ratings… — summed over the plan. Every lever (a metric, or one
component of the TTTT composite) earns points linearly in its numerator until it reaches full
marks (rate 1, its threshold rate, or its component cap), and the TTTT composite caps the sum
of its components. So each lever's marginal points per unit never increase, and the levers
form nested capacities: taking levers greedily by points per additional unit is then optimal
for the continuous problem. Units are whole, so the last unit of each chosen lever is rounded
up (the plan can cost at most one unit per lever more than the fractional optimum); the result
is re-scored with the real engine to confirm it reaches the target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from app.indicators.catalog import CatalogVersion, Component, Group, Metric, Rule
from app.indicators.scoring import Counts, Score, round_points, score

ZERO = Decimal(0)
HALF_CENT = Decimal("0.005")  # 79.995 is published as 80.00
_PRECISION = 40


@dataclass(frozen=True, slots=True)
class Lever:
    """One ratio whose numerator can be raised, with what each extra unit earns."""

    group: Group
    metric: Metric
    component: Component | None
    counts: Counts
    points_per_unit: Decimal
    max_units: int  # extra units until the ratio stops earning
    max_gain: Decimal  # points until full marks (before the composite's own cap)

    @property
    def code(self) -> str:
        return self.component.code if self.component else self.metric.code

    @property
    def numerator_label(self) -> str:
        label = self.component.numerator if self.component else self.metric.numerator
        return label or self.code

    @property
    def denominator_label(self) -> str:
        label = self.component.denominator if self.component else self.metric.denominator
        return label or self.code

    @property
    def name(self) -> str:
        return self.component.name_vi if self.component else self.metric.name_vi


@dataclass(frozen=True, slots=True)
class Step:
    lever: Lever
    additional: int
    points: Decimal  # exact points gained

    @property
    def numerator_to(self) -> int:
        return self.lever.counts.numerator + self.additional


@dataclass(frozen=True, slots=True)
class Plan:
    current_exact: Decimal
    current: Score
    steps: tuple[Step, ...]
    reachable: bool
    best_exact: Decimal  # full marks on every lever
    result: Score | None  # the re-scored plan, when reachable
    missing: tuple[Metric, ...] = field(default=())
    unmeasured: tuple[str, ...] = field(default=())  # codes with an empty denominator

    @property
    def additional_units(self) -> int:
        return sum(s.additional for s in self.steps)


def exact_total(result: Score) -> Decimal:
    """The unrounded sum of metric points (the published total rounds this once)."""
    return sum((m.points for g in result.groups for m in g.metrics if m.points is not None), ZERO)


def _div(a: Decimal, b: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return a / b


def levers(version: CatalogVersion, counts: Mapping[str, Counts], current: Score) -> list[Lever]:
    found: list[Lever] = []
    for group, metric in version.metrics():
        scored = current.metric(metric.code)
        if scored.points is None or scored.points >= metric.max_points:
            continue
        if metric.rule is Rule.tttt_composite:
            for component, part in zip(metric.components, scored.components, strict=True):
                c = counts.get(component.code)
                if c is None or c.denominator == 0 or part.points is None:
                    continue
                full = component.max_term
                if part.points >= full:
                    continue
                # rate needed for the full term: full ÷ coefficient
                target = math.ceil(_div(full * c.denominator, component.coefficient))
                found.append(
                    Lever(group, metric, component, c,
                          points_per_unit=_div(component.coefficient, Decimal(c.denominator)),
                          max_units=max(1, target - c.numerator),
                          max_gain=full - part.points)
                )  # fmt: skip
            continue
        c = counts.get(metric.code)
        if c is None or c.denominator == 0:
            continue
        rate_for_full = metric.threshold if metric.rule is Rule.threshold else Decimal(1)
        assert rate_for_full is not None
        target = math.ceil(rate_for_full * c.denominator)
        found.append(
            Lever(group, metric, None, c,
                  points_per_unit=_div(metric.max_points, rate_for_full * c.denominator),
                  max_units=max(1, target - c.numerator),
                  max_gain=metric.max_points - scored.points)
        )  # fmt: skip
    return found


def plan(version: CatalogVersion, counts: Mapping[str, Counts], needed: Decimal) -> Plan:
    """The fewest additional numerator units that make the published total reach ``needed``."""
    current = score(version, counts)
    current_exact = exact_total(current)
    order = {m.code: i for i, (_, m) in enumerate(version.metrics())}
    candidates = sorted(
        levers(version, counts, current),
        key=lambda lv: (-lv.points_per_unit, order[lv.metric.code], lv.code),
    )
    # The composite's cap is shared by its components: what is left below the metric maximum.
    room = {
        m.code: m.max_points - (current.metric(m.code).points or ZERO) for _, m in version.metrics()
    }
    best_room = dict(room)
    best_exact = current_exact
    for lever in candidates:
        gain = min(lever.max_gain, best_room[lever.metric.code])
        best_room[lever.metric.code] -= gain
        best_exact += gain
    missing = tuple(m for _, m in version.metrics() if current.metric(m.code).points is None)
    unmeasured = tuple(
        code for code in version.counted_codes if (c := counts.get(code)) and c.denominator == 0
    )

    remaining = needed - HALF_CENT - current_exact
    steps: list[Step] = []
    for lever in candidates:
        if remaining <= 0:
            break
        available = min(lever.max_gain, room[lever.metric.code])
        if available <= 0:
            continue
        wanted = min(available, remaining)
        units = min(lever.max_units, math.ceil(_div(wanted, lever.points_per_unit)))
        gain = min(available, units * lever.points_per_unit)
        steps.append(Step(lever, units, gain))
        room[lever.metric.code] -= gain
        remaining -= gain

    if remaining > 0:
        return Plan(current_exact, current, (), False, best_exact, None, missing, unmeasured)
    result = score(version, apply(counts, steps))
    # Guard against rounding at the last cent: one more unit on the last lever that has room.
    while result.total is not None and result.total < needed and steps:
        last = next((s for s in reversed(steps) if s.additional < s.lever.max_units), None)
        if last is None:
            break
        index = steps.index(last)
        bumped = last.points + last.lever.points_per_unit
        steps[index] = Step(last.lever, last.additional + 1, bumped)
        result = score(version, apply(counts, steps))
    steps = _actual_gains(version, counts, steps)
    return Plan(current_exact, current, tuple(steps), True, best_exact, result, missing, unmeasured)


def apply(counts: Mapping[str, Counts], steps: list[Step]) -> dict[str, Counts]:
    changed = dict(counts)
    for step in steps:
        c = changed[step.lever.code]
        changed[step.lever.code] = Counts(c.numerator + step.additional, c.denominator)
    return changed


def _actual_gains(
    version: CatalogVersion, counts: Mapping[str, Counts], steps: list[Step]
) -> list[Step]:
    """Each step's points as the engine scores them, in the order taken (caps included)."""
    out: list[Step] = []
    before = exact_total(score(version, counts))
    for i, step in enumerate(steps):
        after = exact_total(score(version, apply(counts, steps[: i + 1])))
        out.append(Step(step.lever, step.additional, after - before))
        before = after
    return out


def published(points: Decimal) -> Decimal:
    return round_points(points)
