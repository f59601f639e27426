"""Computing and storing a period's scores and rankings, and the period's life: marked changed,
refreshed, closed, re-opened.

A period is refreshed when its inputs change (debounced by the worker) or on first demand.
Quarter and year scores come from summed counts, never from averaged monthly scores. A closed
period is an immutable snapshot: later input is kept as a pending amendment, and re-opening
makes a new revision. Nothing here commits: the router or the job that calls it does, at the
end of its unit of work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import Unprocessable
from app.core.principal import Principal
from app.core.settings import Settings
from app.indicators import periods
from app.indicators.catalog import Catalog, CatalogVersion, Source
from app.indicators.periods import Period
from app.indicators.scoring import Counts, Score, points_of, round_points, score
from app.indicators.service import counts_for_period
from app.scores import rankings, repository
from app.scores.rankings import Peer, UnitInfo, as_number
from app.scores.records import (
    ON_TIME,
    RecordCounts,
    counts_from_records,
    record_fed_codes,
)
from app.scores.repository import RECORD_COUNTS
from app.scores.schemas import PeriodStateOut, RefreshOut
from app.units import repository as units_repository
from app.units.service import ensure_in_scope

ON_TIME_METRIC = ON_TIME  # TDGQ 2.1, computed from the dossiers' timelines

REFRESHES = Counter(
    "chiso_score_refreshes_total",
    "Periods recomputed, by what asked: changed inputs (the worker), a first read, a "
    "request (POST /v1/scores/refresh), closing or re-opening",
    ["trigger"],
)


# --- marking inputs as changed -------------------------------------------------------------


async def mark_changed(session: AsyncSession, periods: Sequence[str], kind: str) -> None:
    await repository.mark_dirty(session, periods, kind)


# --- counts from the dossiers ----------------------------------------------------------------


async def on_time_counts(
    session: AsyncSession, settings: Settings, period: Period
) -> dict[str, Counts]:
    """TDGQ 2.1 counts per unit subtree; a quarter or year sums its months' counts."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    tz = ZoneInfo(settings.timezone)
    for month in period.months():
        start, end = periods.window(month, tz)
        for row in await repository.on_time_counts(
            session, start, end, settings.max_supplement_requests
        ):
            totals[row.unit_code][0] += int(row.numerator)
            totals[row.unit_code][1] += int(row.denominator)
    return {code: Counts(n, d) for code, (n, d) in totals.items()}


async def record_counts(
    session: AsyncSession, settings: Settings, period: Period
) -> dict[str, RecordCounts]:
    """The record-based metrics' counts per unit subtree for dossiers received in the period:
    one statement for every unit (the period's window, in ``CHISO_TIMEZONE``)."""
    start, end = periods.window(period, ZoneInfo(settings.timezone))
    return {
        row.unit_code: RecordCounts(**{name: int(getattr(row, name)) for name in RECORD_COUNTS})
        for row in await repository.record_counts(session, start, end)
    }


# --- scoring every unit ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record-fed code's scored counts came from, and both candidates."""

    scored_from: str  # records | admin (an admin-scope submission overrides)
    computed: Counts | None
    submitted: Counts | None  # the latest submission (any scope), shown; scores only as admin's
    admin: Counts | None


def _grade(result: Score) -> str | None:
    return result.grade.name_vi if result.grade is not None else None


def _source(version: CatalogVersion, code: str) -> Source:
    measure = version.measure(code)
    assert measure is not None
    return (measure.component or measure.metric).source


async def _score_units(
    session: AsyncSession,
    settings: Settings,
    version: CatalogVersion,
    period: Period,
    alive: Sequence[UnitInfo],
) -> tuple[dict[str, Score], dict[str, dict[str, Provenance]]]:
    """Every unit's score for the period under ``version``: submissions, 2.1 from the dossier
    timelines and the record-fed metrics, each computed once for all units. For a record-fed
    metric the computed counts score unless an admin-scope submission overrides them; a unit's
    own submission is kept (and shown) but does not score."""
    codes = [u.code for u in alive]
    submitted = await counts_for_period(session, codes, period)
    on_time = await on_time_counts(session, settings, period)
    record_fed = record_fed_codes(version)
    # Only a `records` metric's own figure can be overridden; a records+submitted metric's
    # submission is its submitted part, whoever makes it.
    overridable = {code for code in record_fed if _source(version, code) is Source.records}
    records = await record_counts(session, settings, period) if record_fed else {}
    admin = (
        await counts_for_period(session, codes, period, admin_scope_only=True) if record_fed else {}
    )
    results: dict[str, Score] = {}
    provenance: dict[str, dict[str, Provenance]] = {}
    for unit in alive:
        own = submitted.get(unit.code, {})
        counts: dict[str, Counts | None] = dict(own)
        if unit.code in on_time:
            counts[ON_TIME_METRIC] = on_time[unit.code]
        by_admin = admin.get(unit.code, {})
        # The submitted parts of records+submitted metrics (1.4's reporting total, 5.4's
        # complaint share): the admin's value if there is one, else the unit's latest.
        parts = {**own, **by_admin}
        computed = counts_from_records(
            record_fed, records.get(unit.code), parts, on_time.get(unit.code)
        )
        provenance[unit.code] = {}
        for code, value in computed.items():
            override = by_admin.get(code) if code in overridable else None
            counts[code] = override if override is not None else value
            provenance[unit.code][code] = Provenance(
                scored_from="admin" if override is not None else "records",
                computed=value,
                submitted=parts.get(code) if code not in overridable else own.get(code),
                admin=override,
            )
        results[unit.code] = score(version, counts)
    return results, provenance


# --- the stored snapshot ---------------------------------------------------------------------


def _counts_json(
    version: CatalogVersion, code: str, counts: Counts | None
) -> dict[str, Any] | None:
    """A candidate value with what it earns alone (two decimals)."""
    if counts is None:
        return None
    measure = version.measure(code)
    points = points_of(measure.metric, measure.component, counts) if measure else None
    return {
        "numerator": counts.numerator,
        "denominator": counts.denominator,
        "points": as_number(round_points(points) if points is not None else None),
    }


def _origin(
    version: CatalogVersion, code: str, provenance: dict[str, Provenance]
) -> dict[str, Any]:
    """Which value scored a code, and the candidates: computed, submitted (the latest,
    any scope) and the admin override."""
    found = provenance.get(code)
    if found is None:
        return {"scored_from": "records" if code == ON_TIME_METRIC else "submitted"}
    return {
        "scored_from": found.scored_from,
        "computed": _counts_json(version, code, found.computed),
        "submitted": _counts_json(version, code, found.submitted),
        "admin": _counts_json(version, code, found.admin),
    }


def _snapshot_values(
    unit: UnitInfo,
    period: str,
    revision: int,
    version: CatalogVersion,
    result: Score,
    at: datetime,
    provenance: dict[str, Provenance] | None = None,
) -> dict[str, Any]:
    origins = provenance or {}
    return {
        "unit_code": unit.code,
        "period": period,
        "revision": revision,
        "catalog_version": version.version,
        "total": result.total,
        "grade": _grade(result),
        "completeness": result.completeness.quantize(Decimal("0.0001")),
        "groups": {g.code: as_number(g.points) for g in result.groups},
        "metrics": [
            {
                "code": m.code,
                "points": as_number(round_points(m.points) if m.points is not None else None),
                "max_points": as_number(m.max_points),
                "numerator": m.counts.numerator if m.counts else None,
                "denominator": m.counts.denominator if m.counts else None,
                **_origin(version, m.code, origins),
                "components": [
                    {
                        "code": c.code,
                        "points": as_number(c.points),
                        "numerator": c.counts.numerator if c.counts else None,
                        "denominator": c.counts.denominator if c.counts else None,
                        **_origin(version, c.code, origins),
                    }
                    for c in m.components
                ],
            }
            for g in result.groups
            for m in g.metrics
        ],
        "rank": None,
        "ranked_of": None,
        "computed_at": at,
    }


# --- refreshing a period ---------------------------------------------------------------------


async def _bridge(
    session: AsyncSession,
    settings: Settings,
    version: CatalogVersion,
    previous: Period,
    every_unit: Sequence[UnitInfo],
) -> dict[str, Peer]:
    """The previous period rescored with ``version``, the first period's rules after a version
    change: rank and score changes then measure the units, not the change of rules."""
    alive = [u for u in every_unit if u.valid_during(previous)]
    rescored, _ = await _score_units(session, settings, version, previous, alive)
    return {
        u.code: Peer(
            unit=u,
            total=rescored[u.code].total,
            grade=_grade(rescored[u.code]),
            complete=rescored[u.code].complete,
            completeness=rescored[u.code].completeness,
            groups={g.code: as_number(g.points) for g in rescored[u.code].groups},
            catalog_version=version.version,
        )
        for u in alive
    }


async def refresh_period(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    period: Period,
    at: datetime,
    *,
    trigger: str = "inputs",
) -> bool:
    """Recompute a period's scores and rankings; False when the period is closed or has no
    catalog version. The caller commits. ``trigger`` (what asked) labels the count of
    recomputations (``chiso_score_refreshes_total``)."""
    name = str(period)
    await repository.lock_period(session, name)
    state = await repository.state(session, name)
    version = catalog.for_period(period)
    if state.status == "closed" or version is None:
        return False
    REFRESHES.labels(trigger).inc()
    every_unit = await rankings.unit_tree(session)
    by_code = {u.code: u for u in every_unit}
    alive = [u for u in every_unit if u.valid_during(period)]
    results, provenance = await _score_units(session, settings, version, period, alive)

    values = {
        u.code: _snapshot_values(
            u, name, state.revision, version, results[u.code], at, provenance.get(u.code, {})
        )
        for u in alive
    }
    # National rank among peers of the same level, kept with the snapshot for history.
    by_level: dict[str, dict[str, Decimal | None]] = defaultdict(dict)
    for unit in alive:
        by_level[unit.level][unit.code] = results[unit.code].total
    for totals in by_level.values():
        ranks = rankings.competition_ranks(totals)
        for code in totals:
            values[code]["rank"] = ranks.get(code)
            values[code]["ranked_of"] = len(ranks)
    await repository.replace_snapshots(session, name, state.revision, list(values.values()))

    flags = await rankings.open_flags(session, [str(m) for m in period.months()])
    current = {
        u.code: Peer(
            unit=u,
            total=results[u.code].total,
            grade=values[u.code]["grade"],
            complete=results[u.code].complete,
            completeness=results[u.code].completeness,
            groups=values[u.code]["groups"],
            catalog_version=version.version,
            integrity_flags=flags.get(u.code, 0),
        )
        for u in alive
    }
    previous_period = str(period.previous())
    previous = {
        s.unit_code: rankings.peer_from_snapshot(by_code[s.unit_code], s)
        for s in await repository.snapshots(session, previous_period)
        if s.unit_code in by_code
    }
    if any(p.catalog_version != version.version for p in previous.values()):
        previous = await _bridge(session, settings, version, period.previous(), every_unit)
    rendered = rankings.render(
        source="computed",
        period=name,
        revision=state.revision,
        status=state.status,
        catalog_version=version.version,
        current=current,
        previous=previous,
        at=at,
        projected=not periods.has_ended(period, settings, at),
    )
    rendered += await _official_rankings(
        session, version, name, previous_period, by_code, state, at
    )
    await repository.save_rankings(session, rendered)
    await repository.bump(session, name, at)
    return True


async def _official_rankings(
    session: AsyncSession,
    version: CatalogVersion,
    period: str,
    previous_period: str,
    by_code: dict[str, UnitInfo],
    state: Any,
    at: datetime,
) -> list[dict[str, Any]]:
    rows = await repository.official(session, [period, previous_period])
    peers: dict[str, dict[str, Peer]] = {period: {}, previous_period: {}}
    for row in rows:
        unit = by_code.get(row.unit_code)
        if unit is None:
            continue
        total = Decimal(row.total)
        peers[row.period][row.unit_code] = Peer(
            unit=unit,
            total=total,
            grade=version.grade_for(total).name_vi,
            complete=True,
            completeness=Decimal(1),
            groups=dict(row.group_scores),
            catalog_version="official",
        )
    if not peers[period]:
        return []
    return rankings.render(
        source="official",
        period=period,
        revision=state.revision,
        status=state.status,
        catalog_version=None,
        current=peers[period],
        previous=peers[previous_period],
        at=at,
    )


async def take_dirty(session: AsyncSession) -> list[Period]:
    """The periods marked changed since the last run, in period order (so a period's
    previous one is refreshed before it), their marks removed. The caller commits before
    refreshing them: input arriving meanwhile marks its periods again instead of waiting."""
    return sorted(Period.parse(p) for p in await repository.take_dirty(session))


async def computed_follower(session: AsyncSession, period: Period) -> Period | None:
    """The period after ``period`` if it was computed before: its rank and score changes are
    measured against ``period``, so refreshing ``period`` makes it stale too."""
    following = period.following()
    return following if await repository.version(session, str(following)) else None


async def ensure_refreshed(
    session: AsyncSession, settings: Settings, catalog: Catalog, period: Period, at: datetime
) -> bool:
    """First demand for a period never computed: compute it now (later ones read snapshots).
    True when it wrote something: the caller commits, so the next reads find it stored."""
    current = await repository.version(session, str(period))
    if current is None or current[1] == 0:
        await refresh_period(session, settings, catalog, period, at, trigger="first_read")
        return True
    return False


# --- fresh scores on request -----------------------------------------------------------------


async def may_refresh(session: AsyncSession, caller: Principal, unit: str | None) -> None:
    """Who may ask: an admin or a key with ``indicators:write`` (the route checks the scope).
    A key bound to a unit names ``unit`` (422 without it), in its subtree (403 outside)."""
    if unit is not None:
        if await units_repository.get(session, unit) is None:
            detail = f"unknown unit {unit!r}"
            raise Unprocessable(detail, errors=[{"pointer": "#/unit", "detail": detail}])
        await ensure_in_scope(session, caller, unit)
    elif caller.unit_code is not None:
        detail = (
            f"this key is bound to unit {caller.unit_code}: name it (or one of its subunits) "
            "as `unit`"
        )
        raise Unprocessable(detail, errors=[{"pointer": "#/unit", "detail": "required"}])


def ensure_refreshable(settings: Settings, catalog: Catalog, period: Period, at: datetime) -> None:
    """422 for a period that has not started (local calendar) or that no catalog version
    scores."""
    if period.first_day > periods.today(settings, at):
        detail = f"{period} has not started yet"
        raise Unprocessable(detail, errors=[{"pointer": "#/period", "detail": detail}])
    if catalog.for_period(period) is None:
        detail = f"no indicator catalog version is in force on {period.first_day}"
        raise Unprocessable(detail, errors=[{"pointer": "#/period", "detail": detail}])


async def seen_version(session: AsyncSession, period: Period) -> tuple[int, int] | None:
    """The period's ``(revision, version)`` as a request finds it, before it waits its turn."""
    return await repository.version(session, str(period))


async def refresh_on_request(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    period: Period,
    at: datetime,
    *,
    seen: tuple[int, int] | None,
    take_mark: Callable[[], Awaitable[None]],
) -> bool:
    """Recompute ``period`` now, unless another refresh of it ran while this request waited
    for its turn (the period's advisory lock): then that refresh's result is the answer, and
    the period is not computed twice. True when this request recomputed it.

    ``seen`` is :func:`seen_version` read before waiting. ``take_mark`` removes the period's
    mark and commits at once, in a unit of work of its own (as the worker takes its marks):
    input arriving from then on marks the period again rather than waiting behind this
    refresh. The caller commits."""
    name = str(period)
    await repository.lock_period(session, name)
    if await repository.version(session, name) != seen:
        return False  # refreshed (or closed) while this request waited: share that result
    await take_mark()
    if not await refresh_period(session, settings, catalog, period, at, trigger="request"):
        return False
    following = period.following()
    await repository.mark_if_open(session, str(following))  # its changes compare with this
    return True


async def refreshed(session: AsyncSession, period: Period, recomputed: bool) -> RefreshOut:
    state = await repository.state(session, str(period))
    pending = await repository.pending(session, [str(period)])
    return RefreshOut(
        period=str(period),
        status=state.status,
        revision=state.revision,
        computed_at=state.refreshed_at,
        inputs_pending=str(period) in pending,
        recomputed=recomputed,
    )


async def take_mark(session: AsyncSession, period: Period) -> bool:
    return await repository.take_mark(session, str(period))


async def put_back_mark(session: AsyncSession, period: Period) -> None:
    """A requested refresh that failed after taking the period's mark: the worker's next run
    refreshes it instead."""
    await repository.mark_dirty(session, [str(period)], "refresh")


# --- the period a person means ---------------------------------------------------------------


async def latest_scored_month(session: AsyncSession, settings: Settings, at: datetime) -> Period:
    """The month a score answer means when none is named: the latest month (up to the running
    one, local calendar) whose scores are stored, else the month before the running one."""
    running = periods.running(settings, at)
    found = await repository.latest_scored_month(session, str(running))
    return Period.parse(found) if found else running.previous()


# --- closing and re-opening ------------------------------------------------------------------


async def period_state(session: AsyncSession, period: Period) -> PeriodStateOut:
    state = await repository.state(session, str(period))
    return PeriodStateOut(
        period=str(period),
        status=state.status,
        revision=state.revision,
        refreshed_at=state.refreshed_at,
        closed_at=state.closed_at,
        closed_by=state.closed_by,
        pending_amendments=await repository.amendments(session, str(period)),
    )


async def close(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    period: Period,
    by: str,
    at: datetime,
) -> None:
    """Refresh once more, then freeze: later input becomes pending amendments. The period
    must have ended by the local calendar (``CHISO_TIMEZONE``)."""
    state = await repository.state(session, str(period))
    if state.status == "closed":
        return
    if not periods.has_ended(period, settings, at):
        raise Unprocessable(
            f"{period} has not ended yet.", errors=[{"parameter": "period", "detail": "not ended"}]
        )
    before = {"status": state.status, "revision": state.revision}
    await refresh_period(session, settings, catalog, period, at, trigger="close")
    await repository.close(session, str(period), by, at)
    await rankings.restamp(session, str(period), "closed")
    await repository.bump(session, str(period), at)  # the ETags change with the status
    after = {"status": "closed", "revision": before["revision"]}
    await audit.record(session, by, "period.close", str(period), before=before, after=after)


async def reopen(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    period: Period,
    at: datetime,
    by: str = "cli",
) -> None:
    state = await repository.state(session, str(period))
    if state.status != "closed":
        raise Unprocessable(
            f"{period} is not closed.", errors=[{"parameter": "period", "detail": "not closed"}]
        )
    before = {"status": state.status, "revision": state.revision}
    await repository.reopen(session, str(period))
    await refresh_period(session, settings, catalog, period, at, trigger="reopen")
    state = await repository.state(session, str(period))
    after = {"status": state.status, "revision": state.revision}
    await audit.record(session, by, "period.reopen", str(period), before=before, after=after)


async def closable_months(
    session: AsyncSession, settings: Settings, calendar: Any, at: datetime, after_days: int
) -> list[Period]:
    """Open months whose end lies ``after_days`` working days or more in the past."""
    tz = ZoneInfo(settings.timezone)
    due = []
    for name in await repository.open_months(session):
        month = Period.parse(name)
        end = datetime.combine(month.last_day + timedelta(days=1), time(), tz)
        if end <= at and calendar.working_days_between(end, at) >= after_days:
            due.append(month)
    return sorted(due)
