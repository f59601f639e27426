"""Indicator rules: which catalog version applies, what may be submitted, revisions, counts.

Part of the service index that other domains (scores, rankings) call: :func:`latest_counts`
and :func:`counts_for_period` give the counts that :func:`app.indicators.scoring.score` scores.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core import events
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable, item_errors
from app.core.principal import Principal, Scope
from app.indicators import repository
from app.indicators.catalog import Catalog, CatalogVersion
from app.indicators.periods import Period, PeriodKind
from app.indicators.schemas import IndicatorItemResult, IndicatorValueIn, IndicatorValueOut
from app.indicators.scoring import Counts, resolve_period_counts
from app.units.service import ensure_in_scope, require_unit

# 2.1 is computed from dossier timelines and, as before, refuses submissions. Other record-fed
# metrics take them: a unit's own is kept and shown, an admin-scope one overrides.
ON_TIME_METRIC = "ON_TIME_RATE"

OUTSIDE_SCOPE = "outside this key's unit"
_STORE_ATTEMPTS = 3


def version_in_force(catalog: Catalog, at: date) -> CatalogVersion:
    version = catalog.in_force(at)
    if version is None:
        raise NotFound(f"No indicator catalog version is in force on {at.isoformat()}.")
    return version


# --- submissions -------------------------------------------------------------------------


@dataclass
class Submitted:
    results: list[IndicatorItemResult]
    rows: dict[int, Row[Any]] = field(default_factory=dict)  # stored or latest row, by index

    def count(self, result: str) -> int:
        return sum(1 for r in self.results if r.result == result)


def parse_items(
    raw_items: Sequence[Any], pointer_prefix: str
) -> list[IndicatorValueIn | IndicatorItemResult]:
    """Validate each raw item on its own: one bad item never sinks the others."""
    parsed: list[IndicatorValueIn | IndicatorItemResult] = []
    for index, raw in enumerate(raw_items):
        try:
            parsed.append(IndicatorValueIn.model_validate(raw))
        except ValidationError as exc:
            errors = item_errors(exc.errors(), pointer_prefix, index)
            fields = raw if isinstance(raw, dict) else {}
            parsed.append(
                IndicatorItemResult(
                    index=index,
                    result="rejected",
                    unit_code=_text(fields.get("unit_code")),
                    period=_text(fields.get("period")),
                    metric_code=_text(fields.get("metric_code")),
                    errors=errors,
                )
            )
    return parsed


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def submit(
    session: AsyncSession,
    principal: Principal,
    catalog: Catalog,
    items: Sequence[IndicatorValueIn | IndicatorItemResult],
    *,
    today: date,
    pointer_prefix: str | None = "/values",
) -> Submitted:
    """Check every value, then store the new revisions in one statement. The caller commits.

    A value identical to the latest revision is ``unchanged`` (no new revision); a second value
    for the same unit, period and metric in one batch is rejected, since which one should win
    would be a guess.
    """
    results: dict[int, IndicatorItemResult] = {}
    valid: dict[int, IndicatorValueIn] = {}
    for index, item in enumerate(items):
        if isinstance(item, IndicatorItemResult):
            results[index] = item
        else:
            valid[index] = item

    validity = await repository.unit_validity(session, {v.unit_code for v in valid.values()})
    allowed = await _allowed_units(session, principal, set(validity))
    first_of: dict[tuple[str, str, str], int] = {}
    accepted: dict[int, tuple[IndicatorValueIn, Period]] = {}
    for index, value in valid.items():
        error = partial(_error, pointer_prefix, index)
        period = Period.parse(value.period)
        errors = _check(value, period, validity, allowed, catalog, today, error)
        if not errors and value.key in first_of:
            detail = f"repeats item {first_of[value.key]} (same unit, period and metric)"
            errors = [error("metric_code", detail)]
        if errors:
            results[index] = _rejected(index, value, errors)
            continue
        first_of[value.key] = index
        accepted[index] = (value, period)

    stored = await _store(session, principal, accepted)
    changed = {
        str(p)
        for index, row in stored.items()
        if not row.unchanged
        for p in _scored_with(accepted[index][1])
    }
    if changed:  # scores subscribe: these periods are refreshed (a closed one: amended)
        units = sorted({accepted[i][0].unit_code for i, row in stored.items() if not row.unchanged})
        await events.publish(
            session,
            events.ScoreInputsChanged(
                kind="submission", periods=tuple(sorted(changed)), unit_codes=tuple(units)
            ),
        )
    revisions = [row.id for row in stored.values() if not row.unchanged]
    await audit.record_indicator_revisions(session, principal, revisions)
    for index, row in stored.items():
        value = accepted[index][0]
        version = catalog.for_period(accepted[index][1])
        measure = version.measure(value.metric_code) if version is not None else None
        part = (measure.component or measure.metric) if measure is not None else None
        results[index] = IndicatorItemResult(
            index=index,
            result="unchanged" if row.unchanged else "stored",
            unit_code=value.unit_code,
            period=value.period,
            metric_code=value.metric_code,
            indicator=part.indicator if part is not None else None,
            source=part.source if part is not None else None,
            revision=row.revision,
            admin_scope=row.admin_scope,
        )
    return Submitted(results=[results[i] for i in sorted(results)], rows=stored)


async def submit_one(
    session: AsyncSession,
    principal: Principal,
    catalog: Catalog,
    value: IndicatorValueIn,
    *,
    today: date,
) -> tuple[IndicatorValueOut, bool]:
    """One value: 403 outside the key's unit, 422 when invalid. Returns (revision, stored)."""
    outcome = await submit(session, principal, catalog, [value], today=today, pointer_prefix=None)
    result = outcome.results[0]
    if result.result == "rejected":
        errors = result.errors or []
        if any(e["detail"] == OUTSIDE_SCOPE for e in errors):
            raise Forbidden(f"This key is limited to unit {principal.unit_code} and its subunits.")
        raise Unprocessable(errors[0]["detail"] if errors else None, errors=errors)
    out = described(IndicatorValueOut.model_validate(outcome.rows[0]), catalog)
    return out, result.result == "stored"


def described(value: IndicatorValueOut, catalog: Catalog) -> IndicatorValueOut:
    """The value with its metric's official indicator and source, per the period's version."""
    version = catalog.for_period(Period.parse(value.period))
    measure = version.measure(value.metric_code) if version is not None else None
    if measure is None:
        return value
    part = measure.component or measure.metric
    value.indicator = part.indicator
    value.source = part.source
    return value


def _check(
    value: IndicatorValueIn,
    period: Period,
    validity: dict[str, tuple[date | None, date | None]],
    allowed: set[str],
    catalog: Catalog,
    today: date,
    error: Callable[[str, str], dict[str, str]],
) -> list[dict[str, str]]:
    if value.unit_code not in validity:
        return [error("unit_code", f"unknown unit {value.unit_code!r}")]
    if value.unit_code not in allowed:
        return [error("unit_code", OUTSIDE_SCOPE)]
    version = catalog.for_period(period)
    if version is None:
        return [
            error(
                "period",
                f"no indicator catalog version is in force on {period.first_day.isoformat()}, "
                f"the first day of {period}",
            )
        ]
    errors: list[dict[str, str]] = []
    measure = version.measure(value.metric_code)
    if measure is None:
        errors.append(error("metric_code", _unknown_metric(version, value.metric_code)))
    elif value.metric_code == ON_TIME_METRIC:
        errors.append(
            error(
                "metric_code",
                f"{value.metric_code} is computed by chiso from dossier timelines; "
                "it cannot be submitted",
            )
        )
    else:
        kinds = measure.metric.period_kinds
        if period.kind not in kinds:
            per = ", ".join(k.value for k in kinds)
            detail = f"{value.metric_code} is reported per {per}, not per {period.kind.value}"
            errors.append(error("period", detail))
        if value.numerator > value.denominator and not measure.allow_numerator_above_denominator:
            errors.append(
                error(
                    "numerator",
                    f"numerator {value.numerator} exceeds denominator {value.denominator}; "
                    f"{value.metric_code} is a share of its denominator",
                )
            )
    if period.first_day > today:
        errors.append(error("period", f"period {period} has not started yet"))
    valid_from, valid_to = validity[value.unit_code]
    if (valid_from is not None and valid_from > period.last_day) or (
        valid_to is not None and valid_to < period.first_day
    ):
        span = f"{valid_from or '…'} – {valid_to or '…'}"
        errors.append(
            error("period", f"unit {value.unit_code} did not exist during {period} ({span})")
        )
    return errors


def _unknown_metric(version: CatalogVersion, code: str) -> str:
    for _, metric in version.metrics():
        if metric.code == code and metric.components:
            parts = ", ".join(metric.counted_codes)
            return f"{code} is scored from its components; submit {parts}"
    return f"unknown metric {code!r} in catalog version {version.version}"


def _error(prefix: str | None, index: int, field: str, detail: str) -> dict[str, str]:
    pointer = f"#{prefix}/{index}/{field}" if prefix is not None else f"#/{field}"
    return {"pointer": pointer, "detail": detail}


def _rejected(
    index: int, value: IndicatorValueIn, errors: list[dict[str, str]]
) -> IndicatorItemResult:
    return IndicatorItemResult(
        index=index,
        result="rejected",
        unit_code=value.unit_code,
        period=value.period,
        metric_code=value.metric_code,
        errors=errors,
    )


async def _allowed_units(session: AsyncSession, principal: Principal, codes: set[str]) -> set[str]:
    if principal.unit_code is None:
        return codes
    return await repository.codes_within(session, codes, principal.unit_code)


async def _store(
    session: AsyncSession,
    principal: Principal,
    accepted: dict[int, tuple[IndicatorValueIn, Period]],
) -> dict[int, Row[Any]]:
    """Store with a bounded retry for values whose revision number a concurrent request took."""
    key_id = uuid.UUID(principal.key_id) if principal.key_id else None
    pending = sorted(accepted)
    stored: dict[int, Row[Any]] = {}
    for _ in range(_STORE_ATTEMPTS):
        if not pending:
            return stored
        rows = await repository.store_revisions(
            session,
            [
                (v.unit_code, p, v.metric_code, v.numerator, v.denominator)
                for v, p in (accepted[i] for i in pending)
            ],
            submitted_by=principal.name,
            key_id=key_id,
            admin_scope=principal.has(Scope.admin),
        )
        raced = []
        for index, row in zip(pending, rows, strict=True):
            if row.id is None:
                raced.append(index)
            else:
                stored[index] = row
        pending = raced
    if pending:
        raise Conflict("Concurrent submissions for the same values kept colliding; retry.")
    return stored


# --- reads -------------------------------------------------------------------------------


def parse_period_parameter(text: str | None) -> Period | None:
    if text is None:
        return None
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise Unprocessable(str(exc), errors=[{"parameter": "period", "detail": str(exc)}]) from exc


async def unit_values(
    session: AsyncSession,
    principal: Principal,
    unit_code: str,
    *,
    period: Period | None,
    metric_code: str | None,
    history: bool,
    after: tuple[str, str, int] | None,
    limit: int,
) -> list[Row[Any]]:
    """A unit's submitted values (latest revisions, or every revision with ``history``)."""
    await require_unit(session, unit_code)
    await ensure_in_scope(session, principal, unit_code)
    return await repository.list_values(
        session,
        unit_code,
        period=str(period) if period else None,
        metric_code=metric_code,
        history=history,
        after=after,
        limit=limit,
    )


# --- counts for scoring (used by scores and rankings) --------------------------------------


async def latest_counts(
    session: AsyncSession,
    unit_codes: Sequence[str],
    periods: Sequence[Period],
    *,
    admin_scope_only: bool = False,
) -> dict[tuple[str, Period, str], Counts]:
    """Latest submitted revision per ``(unit_code, period, code)``, in one set-based query.

    Only what was submitted for exactly these periods; see :func:`counts_for_period` for a
    quarter or year built from its months.
    """
    by_text = {str(p): p for p in periods}
    rows = await repository.latest_counts(
        session, unit_codes, list(by_text), admin_scope_only=admin_scope_only
    )
    return {
        (r.unit_code, by_text[r.period], r.metric_code): Counts(r.numerator, r.denominator)
        for r in rows
    }


async def counts_for_period(
    session: AsyncSession,
    unit_codes: Sequence[str],
    period: Period,
    *,
    admin_scope_only: bool = False,
) -> dict[str, dict[str, Counts]]:
    """``{unit_code: {code: Counts}}`` for scoring ``period``, units without data left out.

    A direct submission for the period wins; otherwise the counts of its parts are summed (a
    year from its quarters, each quarter from its own submission or its months). Counts are
    summed, never scores: a quarter's rate is Σ numerators ÷ Σ denominators.
    """
    periods = _with_parts(period)
    latest = await latest_counts(session, unit_codes, periods, admin_scope_only=admin_scope_only)
    per_unit: dict[str, dict[tuple[Period, str], Counts]] = {}
    for (unit_code, part, code), counts in latest.items():
        per_unit.setdefault(unit_code, {})[(part, code)] = counts
    return {
        unit_code: resolved
        for unit_code, submitted in per_unit.items()
        if (resolved := resolve_period_counts(period, submitted))
    }


def _scored_with(period: Period) -> list[Period]:
    """A value counts in its own period and in the quarter and year containing it."""
    found = [period]
    for kind in (PeriodKind.quarter, PeriodKind.year):
        if _LENGTH[kind] > _LENGTH[period.kind]:
            found.append(Period.containing(period.first_day, kind))
    return found


_LENGTH = {PeriodKind.month: 1, PeriodKind.quarter: 2, PeriodKind.year: 3}


def _with_parts(period: Period) -> list[Period]:
    found = [period]
    for part in period.parts():
        found.extend(_with_parts(part))
    return found


def period_parts(period: Period) -> dict[str, list[Any]]:
    """A period with its parts and theirs, as the parameters of the set-based statements that
    resolve counts the way :func:`counts_for_period` does
    (:func:`app.indicators.repository.resolved_counts_ctes`)."""
    return repository.period_parts(period)
