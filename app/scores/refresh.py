"""Computing and storing a period's scores and rankings, and the period's life: marked changed,
refreshed, closed, re-opened.

A period is refreshed when its inputs change (debounced by the worker) or on first demand.
Quarter and year scores come from summed counts, never from averaged monthly scores. A closed
period is an immutable snapshot: later input is kept as a pending amendment, and re-opening
makes a new revision. Nothing here commits: the router or the job that calls it does, at the
end of its unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
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
from app.indicators.catalog import Catalog, CatalogVersion
from app.indicators.periods import Period
from app.indicators.scoring import Counts, Score, points_of, round_points
from app.indicators.service import counts_for_period, period_parts
from app.scores import rankings, repository
from app.scores.columns import Provenance, reference_unit
from app.scores.models import RECORD_COUNTS
from app.scores.rankings import Peer, UnitInfo, as_number
from app.scores.records import ON_TIME, RecordCounts, record_fed_codes
from app.scores.schemas import PeriodStateOut, RefreshOut
from app.units import repository as units_repository
from app.units.service import ensure_in_scope

ON_TIME_METRIC = ON_TIME  # TDGQ 2.1, computed from the dossiers' timelines

logger = logging.getLogger("chiso.scores")

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


async def on_time_counts(session: AsyncSession, period: Period) -> dict[str, list[Any]]:
    """TDGQ 2.1 counts per unit subtree as columns (``unit_code``, ``numerator``,
    ``denominator``) for each month of the period (local to ``CHISO_TIMEZONE``): a quarter or
    year lists each month's, to be summed per unit. Read from the steps the database keeps as
    dossiers are written (made ready by :func:`keep_counts`, which :func:`refresh_period` runs
    first)."""
    return await repository.on_time_columns(session, [m.first_day for m in period.months()])


def _month_span(period: Period) -> tuple[date, date]:
    """The first days of the period's first and last months (the keys of the kept counts)."""
    return period.first_day, period.last_day.replace(day=1)


async def keep_counts(session: AsyncSession, settings: Settings, period: Period) -> None:
    """The counts the database keeps per unit and month (2.1's steps and the record-based
    metrics' counts) made ready for the period: rebuilt when kept under another time zone
    than ``CHISO_TIMEZONE`` or another ``CHISO_MAX_SUPPLEMENT_REQUESTS`` (or under none), and
    the period's months compacted (every write of dossiers appends to them)."""
    if await repository.rebuild_kept_counts_if_basis_differs(
        session, settings.timezone, settings.max_supplement_requests
    ):
        logger.warning(
            "kept counts rebuilt from the dossiers for the time zone %s and at most %d "
            "supplement requests",
            settings.timezone,
            settings.max_supplement_requests,
        )
    await repository.compact_kept_counts(session, *_month_span(period))


async def record_counts(session: AsyncSession, period: Period) -> dict[str, list[Any]]:
    """The record-based metrics' counts per unit subtree for dossiers received in the period
    (its months, local to ``CHISO_TIMEZONE``), as columns: the counts the database keeps per
    unit and month as dossiers are written (made ready by :func:`keep_counts`, which
    :func:`refresh_period` runs first), summed for every unit in one statement."""
    return await repository.record_columns(session, *_month_span(period))


# --- scoring every unit ----------------------------------------------------------------------


def _grade(result: Score) -> str | None:
    return result.grade.name_vi if result.grade is not None else None


@dataclass(frozen=True, slots=True)
class UnitScore:
    """What rankings need of a unit's score (the snapshot holds the rest); ``completeness``
    unrounded, as :class:`app.indicators.scoring.Score` has it."""

    total: Decimal | None
    grade: str | None
    completeness: Decimal
    groups: dict[str, float | None]

    @property
    def complete(self) -> bool:
        return self.completeness == 1


def _inputs(on_time: dict[str, list[Any]], records: dict[str, list[Any]]) -> dict[str, list[Any]]:
    params = {
        "ot_unit": on_time["unit_code"],
        "ot_n": on_time["numerator"],
        "ot_d": on_time["denominator"],
    }
    params.update({f"rc_{name}": records.get(name, []) for name in ("unit_code", *RECORD_COUNTS)})
    return params


async def _score_units(
    session: AsyncSession,
    settings: Settings,
    version: CatalogVersion,
    period: Period,
    alive: Sequence[UnitInfo],
    store: dict[str, Any] | None = None,
) -> dict[str, UnitScore]:
    """Every unit's score for the period under ``version``, in one statement: submissions, 2.1
    from the dossier timelines and the record-fed metrics, each counted once for all units.
    For a record-fed metric the computed counts score unless an admin-scope submission
    overrides them; a unit's own submission is kept (and shown) but does not score. With
    ``store`` (period, revision, catalog version, instant) the snapshots are written."""
    on_time = await on_time_counts(session, period)
    record_fed = record_fed_codes(version)
    records = await record_counts(session, period) if record_fed else {}
    params: dict[str, Any] = {
        "units": [u.code for u in alive],
        "levels": [u.level for u in alive],
        **period_parts(period),
        **_inputs(on_time, records),
        "b_name": [band.name_vi for band in version.grade_bands],
        **(store or {}),
    }
    rows = await repository.score_units(session, version, params, store=store is not None)
    results = {
        r.unit_code: UnitScore(
            r.total, r.grade, r.exact_completeness, {g: _float(v) for g, v in r.groups.items()}
        )
        for r in rows
    }
    ties = [r.unit_code for r in rows if r.tie]
    del rows, params
    if ties:  # rare: Decimal's 28-digit sums decide which side of a half-cent these fall on
        await _rescore(session, version, period, alive, ties, on_time, records, results, store)
    return results


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


async def _rescore(
    session: AsyncSession,
    version: CatalogVersion,
    period: Period,
    alive: Sequence[UnitInfo],
    codes: list[str],
    on_time: dict[str, list[Any]],
    records: dict[str, list[Any]],
    results: dict[str, UnitScore],
    store: dict[str, Any] | None,
) -> None:
    """The units ``codes`` scored the per-unit ``Decimal`` way (:func:`reference_unit`), their
    stored snapshots (with ``store``) replaced where they differ, and the period ranked anew
    when a total moved (most often none does: the tie test is a conservative one)."""
    wanted = set(codes)
    submitted = await counts_for_period(session, codes, period)
    admin = await counts_for_period(session, codes, period, admin_scope_only=True)
    timely: dict[str, list[int]] = {}
    for code, n, d in zip(*on_time.values(), strict=True):
        if code in wanted:
            timely.setdefault(code, [0, 0])
            timely[code][0] += int(n)
            timely[code][1] += int(d)
    found: dict[str, RecordCounts] = {}
    if records:
        names = list(RECORD_COUNTS)
        for i, code in enumerate(records["unit_code"]):
            if code in wanted:
                found[code] = RecordCounts(**{n: int(records[n][i]) for n in names})
    by_code = {u.code: u for u in alive}
    values = []
    moved = False
    for code in codes:
        on = timely.get(code)
        result, provenance = reference_unit(
            version,
            submitted.get(code, {}),
            admin.get(code, {}),
            Counts(on[0], on[1]) if on is not None else None,
            found.get(code),
        )
        snapshot = _snapshot_values(
            by_code[code], str(period), 0, version, result, datetime.min, provenance
        )
        values.append(snapshot)
        moved = moved or results[code].total != result.total
        results[code] = UnitScore(
            result.total, _grade(result), result.completeness, snapshot["groups"]
        )
    if store is not None:
        await repository.update_snapshots(
            session, store["period"], store["revision"], values, rerank=moved
        )


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
    rescored = await _score_units(session, settings, version, previous, alive)
    return {
        u.code: Peer(
            unit=u,
            total=rescored[u.code].total,
            grade=rescored[u.code].grade,
            complete=rescored[u.code].complete,
            completeness=rescored[u.code].completeness,
            groups=rescored[u.code].groups,
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
    await keep_counts(session, settings, period)
    every_unit = await rankings.unit_tree(session)
    by_code = {u.code: u for u in every_unit}
    alive = [u for u in every_unit if u.valid_during(period)]
    # Every unit's snapshot, with its national rank among peers of the same level (kept with
    # the snapshot for history), written by the scoring statement itself.
    await repository.delete_snapshots(session, name, state.revision)
    store = {
        "period": name,
        "revision": state.revision,
        "catalog_version": version.version,
        "at": at,
    }
    results = await _score_units(session, settings, version, period, alive, store)

    flags = await rankings.open_flags(session, [str(m) for m in period.months()])
    current = {
        u.code: Peer(
            unit=u,
            total=results[u.code].total,
            grade=results[u.code].grade,
            complete=results[u.code].complete,
            completeness=results[u.code].completeness,
            groups=results[u.code].groups,
            catalog_version=version.version,
            integrity_flags=flags.get(u.code, 0),
        )
        for u in alive
    }
    previous_period = str(period.previous())
    previous = {
        s.unit_code: rankings.peer_from_row(by_code[s.unit_code], s)
        for s in await repository.peer_rows(session, previous_period)
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
