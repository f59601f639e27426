"""Scores, grades and rankings: computed per period from submissions and dossiers, stored as
snapshots, and served from them (so polling costs a version check, not a computation).

A period is refreshed when its inputs change (debounced by the worker) or on first demand.
Quarter and year scores come from summed counts, never from averaged monthly scores. A closed
period is an immutable snapshot: later input is kept as a pending amendment, and re-opening
makes a new revision.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import NotFound, Unprocessable
from app.core.http_cache import etag_for
from app.core.settings import Settings
from app.indicators.catalog import Catalog, CatalogVersion, Component, Rule, Source
from app.indicators.periods import Period, PeriodKind
from app.indicators.scoring import Counts, Score, points_of, round_points, score
from app.indicators.service import counts_for_period
from app.insights.repository import open_flag_counts
from app.scores import repository
from app.scores.models import RankingSnapshot, ScoreSnapshot
from app.scores.records import RecordCounts, counts_from_records, record_fed_codes
from app.scores.repository import RECORD_COUNTS
from app.scores.schemas import (
    GroupLine,
    History,
    HistoryPoint,
    MetricLine,
    Official,
    PeriodStateOut,
    Scorecard,
    ValueLine,
)
from app.units import repository as units_repository
from app.units.models import Unit

ON_TIME_METRIC = "ON_TIME_RATE"
RANKED_PARENT_LEVELS = ("ministry", "province")


@dataclass(frozen=True, slots=True)
class UnitInfo:
    code: str
    name: str
    level: str
    valid_from: date | None
    valid_to: date | None
    ancestors: tuple[str, ...]

    def valid_during(self, period: Period) -> bool:
        return (self.valid_from is None or self.valid_from <= period.last_day) and (
            self.valid_to is None or self.valid_to >= period.first_day
        )


def ranking_key(source: str, level: str, parent: str | None, period: str) -> str:
    return f"{source}:{level}:{parent or '-'}:{period}"


def window(period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """First and last instant of a period in local time (the last one is what 2.1 uses as
    the end time of dossiers still pending)."""
    start = datetime.combine(period.first_day, time(), tz)
    end = datetime.combine(period.last_day + timedelta(days=1), time(), tz) - timedelta(
        microseconds=1
    )
    return start, end


# --- marking inputs as changed -------------------------------------------------------------


def periods_touched(spans: Iterable[tuple[date, date]], limit: int = 36) -> list[str]:
    """Every month (and its quarter and year) that a dossier living from ``a`` to ``b`` may
    count in; a span longer than ``limit`` months is cut to its latest months."""
    found: set[str] = set()
    for first, last in spans:
        if last < first:
            first, last = last, first
        month = Period.containing(last, PeriodKind.month)
        for _ in range(limit):
            found.update(
                {
                    str(month),
                    str(Period.containing(month.first_day, PeriodKind.quarter)),
                    str(Period.containing(month.first_day, PeriodKind.year)),
                }
            )
            if month.first_day <= first:
                break
            month = month.previous()
    return sorted(found)


async def mark_changed(session: AsyncSession, periods: Sequence[str], kind: str) -> None:
    await repository.mark_dirty(session, periods, kind)


# --- computing -----------------------------------------------------------------------------


async def units(session: AsyncSession) -> list[UnitInfo]:
    rows = await repository.units_with_ancestors(session)
    return [
        UnitInfo(r.code, r.name, r.level, r.valid_from, r.valid_to, tuple(r.ancestors))
        for r in rows
    ]


async def on_time_counts(
    session: AsyncSession, settings: Settings, period: Period
) -> dict[str, Counts]:
    """TDGQ 2.1 counts per unit subtree; a quarter or year sums its months' counts."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    tz = ZoneInfo(settings.timezone)
    for month in period.months():
        start, end = window(month, tz)
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
    start, end = window(period, ZoneInfo(settings.timezone))
    return {
        row.unit_code: RecordCounts(**{name: int(getattr(row, name)) for name in RECORD_COUNTS})
        for row in await repository.record_counts(session, start, end)
    }


def competition_ranks(totals: dict[str, Decimal | None]) -> dict[str, int]:
    """1, 2, 2, 4: ties share a rank and the next rank skips. Units without a total are not
    ranked."""
    ordered = sorted((t for t in totals.values() if t is not None), reverse=True)
    first_at: dict[Decimal, int] = {}
    for position, total in enumerate(ordered, start=1):
        first_at.setdefault(total, position)
    return {code: first_at[t] for code, t in totals.items() if t is not None}


def _grade(version: CatalogVersion, result: Score) -> str | None:
    return result.grade.name_vi if result.grade is not None else None


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
        "points": _num(round_points(points) if points is not None else None),
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
        "grade": _grade(version, result),
        "completeness": result.completeness.quantize(Decimal("0.0001")),
        "groups": {g.code: _num(g.points) for g in result.groups},
        "metrics": [
            {
                "code": m.code,
                "points": _num(round_points(m.points) if m.points is not None else None),
                "max_points": _num(m.max_points),
                "numerator": m.counts.numerator if m.counts else None,
                "denominator": m.counts.denominator if m.counts else None,
                **_origin(version, m.code, origins),
                "components": [
                    {
                        "code": c.code,
                        "points": _num(c.points),
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


def _num(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _dec(value: Any) -> Decimal | None:
    """Points as published: two decimals."""
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None


@dataclass
class Peer:
    unit: UnitInfo
    total: Decimal | None
    grade: str | None
    complete: bool
    completeness: Decimal
    groups: dict[str, float | None]
    catalog_version: str | None
    integrity_flags: int = 0  # open data-integrity flags of the unit's subtree (never scored)


def _ranking_body(
    *,
    level: str,
    parent: str | None,
    period: str,
    source: str,
    catalog_version: str | None,
    revision: int,
    status: str,
    peers: list[Peer],
    previous: dict[str, Peer],
    at: datetime,
    projected: bool = False,
) -> bytes:
    ranks = competition_ranks({p.unit.code: p.total for p in peers})
    previous_ranks = competition_ranks({c: p.total for c, p in previous.items()})
    items = []
    for peer in sorted(peers, key=lambda p: (ranks.get(p.unit.code, 10**9), p.unit.code)):
        before = previous.get(peer.unit.code)
        # Changes only against the previous period of the same kind scored the same way.
        comparable = (
            before is not None
            and before.total is not None
            and peer.total is not None
            and before.catalog_version == peer.catalog_version
            and peer.unit.code in ranks
        )
        items.append(
            {
                "rank": ranks.get(peer.unit.code),
                "unit_code": peer.unit.code,
                "name": peer.unit.name,
                "total": _num(peer.total),
                "grade": peer.grade,
                "complete": peer.complete,
                "completeness": float(peer.completeness),
                "groups": peer.groups,
                "rank_change": previous_ranks[peer.unit.code] - ranks[peer.unit.code]
                if comparable
                else None,
                "score_change": float(peer.total - before.total)  # type: ignore[operator, union-attr]
                if comparable
                else None,
                "integrity_flags": peer.integrity_flags,
            }
        )
    body = {
        "level": level,
        "parent": parent,
        "period": period,
        "source": source,
        "catalog_version": catalog_version,
        "revision": revision,
        "status": status,
        "projected": projected,  # the period is still running: totals will move
        "ranked": len(ranks),
        "computed_at": at.isoformat(),
        "items": items,
        "next": None,
    }
    return orjson.dumps(body)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _rankings(
    *,
    source: str,
    period: str,
    revision: int,
    status: str,
    catalog_version: str | None,
    current: dict[str, Peer],
    previous: dict[str, Peer],
    at: datetime,
    projected: bool = False,
) -> list[dict[str, Any]]:
    """Every ranking of a period: per level nationwide, and per level within each province
    (or ministry)."""
    groups: dict[tuple[str, str | None], list[Peer]] = defaultdict(list)
    for peer in current.values():
        groups[(peer.unit.level, None)].append(peer)
        for ancestor in peer.unit.ancestors:
            groups[(peer.unit.level, ancestor)].append(peer)
    parents = {p.unit.code for p in current.values() if p.unit.level in RANKED_PARENT_LEVELS}
    out = []
    for (level, parent), peers in groups.items():
        if parent is not None and parent not in parents:
            continue
        before = {
            c: p
            for c, p in previous.items()
            if p.unit.level == level and (parent is None or parent in p.unit.ancestors)
        }
        body = _ranking_body(
            level=level,
            parent=parent,
            period=period,
            source=source,
            catalog_version=catalog_version,
            revision=revision,
            status=status,
            peers=peers,
            previous=before,
            at=at,
            projected=projected,
        )
        out.append(
            {
                "key": ranking_key(source, level, parent, period),
                "period": period,
                "etag": etag_of(body),
                "body": body,
                "computed_at": at,
            }
        )
    return out


def _peer_from_snapshot(unit: UnitInfo, snap: ScoreSnapshot) -> Peer:
    return Peer(
        unit=unit,
        total=snap.total,
        grade=snap.grade,
        complete=snap.completeness == 1,
        completeness=snap.completeness,
        groups=dict(snap.groups),
        catalog_version=snap.catalog_version,
    )


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record-fed code's scored counts came from, and both candidates."""

    scored_from: str  # records | admin (an admin-scope submission overrides)
    computed: Counts | None
    submitted: Counts | None  # the latest submission (any scope), shown; scores only as admin's
    admin: Counts | None


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
            grade=_grade(version, rescored[u.code]),
            complete=rescored[u.code].complete,
            completeness=rescored[u.code].completeness,
            groups={g.code: _num(g.points) for g in rescored[u.code].groups},
            catalog_version=version.version,
        )
        for u in alive
    }


async def refresh_period(
    session: AsyncSession, settings: Settings, catalog: Catalog, period: Period, at: datetime
) -> bool:
    """Recompute a period's scores and rankings; False when the period is closed or has no
    catalog version. The caller commits."""
    name = str(period)
    # One refresh of a period at a time (worker and on-demand requests may race).
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('scores:' || :p))"), {"p": name}
    )
    state = await repository.state(session, name)
    version = catalog.for_period(period)
    if state.status == "closed" or version is None:
        return False
    every_unit = await units(session)
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
        ranks = competition_ranks(totals)
        for code in totals:
            values[code]["rank"] = ranks.get(code)
            values[code]["ranked_of"] = len(ranks)
    await repository.replace_snapshots(session, name, state.revision, list(values.values()))

    flags = await open_flag_counts(session, [str(m) for m in period.months()])
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
        s.unit_code: _peer_from_snapshot(by_code[s.unit_code], s)
        for s in await repository.snapshots(session, previous_period)
        if s.unit_code in by_code
    }
    if any(p.catalog_version != version.version for p in previous.values()):
        previous = await _bridge(session, settings, version, period.previous(), every_unit)
    rankings = _rankings(
        source="computed",
        period=name,
        revision=state.revision,
        status=state.status,
        catalog_version=version.version,
        current=current,
        previous=previous,
        at=at,
        projected=period.last_day >= at.astimezone(ZoneInfo(settings.timezone)).date(),
    )
    rankings += await _official_rankings(
        session, version, name, previous_period, by_code, state, at
    )
    await repository.save_rankings(session, rankings)
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
    return _rankings(
        source="official",
        period=period,
        revision=state.revision,
        status=state.status,
        catalog_version=None,
        current=peers[period],
        previous=peers[previous_period],
        at=at,
    )


async def refresh_dirty(
    session: AsyncSession, settings: Settings, catalog: Catalog, at: datetime
) -> list[str]:
    """Refresh every period marked changed since the last run (each commits on its own)."""
    queue = sorted((Period.parse(p) for p in await repository.take_dirty(session)), key=_order)
    await session.commit()
    known = {str(p) for p in queue}
    refreshed = []
    while queue:
        period = queue.pop(0)
        if await refresh_period(session, settings, catalog, period, at):
            refreshed.append(str(period))
            # The next period's rank and score changes are measured against this one.
            following = Period.containing(period.last_day + timedelta(days=1), period.kind)
            if str(following) not in known and await repository.version(session, str(following)):
                known.add(str(following))
                queue.append(following)
        await session.commit()
    return refreshed


def _order(period: Period) -> tuple[date, int]:
    return (period.first_day, list(PeriodKind).index(period.kind))


# --- reading -------------------------------------------------------------------------------


def parse_period(text_value: str, parameter: str = "period") -> Period:
    try:
        return Period.parse(text_value)
    except ValueError as exc:
        raise Unprocessable(
            str(exc), errors=[{"parameter": parameter, "detail": str(exc)}]
        ) from exc


async def ensure_refreshed(
    session: AsyncSession, settings: Settings, catalog: Catalog, period: Period, at: datetime
) -> None:
    """First demand for a period never computed: compute it now (later ones read snapshots)."""
    current = await repository.version(session, str(period))
    if current is None or current[1] == 0:
        await refresh_period(session, settings, catalog, period, at)
        await session.commit()


async def ranking_snapshot(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    *,
    source: str,
    level: str,
    parent: str | None,
    period: Period,
    at: datetime,
) -> tuple[str, bytes | None]:
    """``(etag, body)``; body None means "fetch it only if the client's ETag differs"."""
    key = ranking_key(source, level, parent, str(period))
    etag = await repository.ranking_etag(session, key)
    if etag is None:
        await ensure_refreshed(session, settings, catalog, period, at)
        etag = await repository.ranking_etag(session, key)
    if etag is None:
        if parent is not None and await _unknown_unit(session, parent):
            raise NotFound(f"No unit with code {parent!r}.")
        running = period.last_day >= at.astimezone(ZoneInfo(settings.timezone)).date()
        body = _empty_ranking(level, parent, str(period), source, at, running)
        return etag_of(body), body
    return etag, None


async def _unknown_unit(session: AsyncSession, code: str) -> bool:
    found = await session.scalar(text("SELECT 1 FROM units WHERE code = :c"), {"c": code})
    return found is None


def _empty_ranking(
    level: str, parent: str | None, period: str, source: str, at: datetime, projected: bool
) -> bytes:
    """No unit of that level (under that parent) to rank: an empty list, same shape."""
    return orjson.dumps(
        {
            "level": level,
            "parent": parent,
            "period": period,
            "source": source,
            "catalog_version": None,
            "revision": 1,
            "status": "open",
            "projected": projected,
            "ranked": 0,
            "computed_at": at.isoformat(),
            "items": [],
            "next": None,
        }
    )


async def ranking_body(session: AsyncSession, key: str) -> bytes:
    snap = await repository.ranking(session, key)
    if snap is None:
        raise NotFound("ranking not found")
    return bytes(snap.body)


def full_marks_rate(metric_rule: Rule, threshold: Decimal | None) -> Decimal | None:
    if metric_rule is Rule.linear:
        return Decimal(1)
    if metric_rule is Rule.threshold:
        return threshold
    return None


def _component_full_marks(component: Component) -> Decimal:
    """The rate from which a composite's term is full: cap ÷ coefficient when capped (B: 0.8)."""
    if component.cap is None or component.cap >= component.coefficient:
        return Decimal(1)
    return (component.cap / component.coefficient).quantize(Decimal("0.0001"))


def _metric_line(
    data: dict[str, Any],
    *,
    code: str,
    indicator: str | None,
    source: Source,
    name: str,
    max_points: Decimal,
    full_marks: Decimal | None,
) -> MetricLine:
    """One scorecard line from a snapshot's stored metric (or component) figures."""
    points = _dec(data.get("points"))
    numerator, denominator = data.get("numerator"), data.get("denominator")
    scored_from = data.get("scored_from") or (
        "records" if source is Source.records else "submitted"
    )
    return MetricLine(
        scored_from=scored_from,
        overridden=scored_from == "admin",
        computed=_value_line(data.get("computed")),
        submitted=_value_line(data.get("submitted")),
        code=code,
        indicator=indicator,
        source=source,
        name=name,
        points=points,
        max_points=max_points,
        lost=max_points - points if points is not None else None,
        numerator=numerator,
        denominator=denominator,
        rate=_rate(numerator, denominator),
        full_marks_rate=full_marks,
        missing=points is None,
    )


async def _bridged_changes(
    session: AsyncSession, level: str, code: str, period: Period
) -> tuple[int | None, Decimal | None]:
    """The unit's rank and score changes as its national ranking states them."""
    stored = await repository.ranking(session, ranking_key("computed", level, None, str(period)))
    if stored is None:
        return None, None
    item = next((i for i in orjson.loads(stored.body)["items"] if i["unit_code"] == code), None)
    if item is None:
        return None, None
    change = item["score_change"]
    return item["rank_change"], _dec(change) if change is not None else None


def _value_line(data: dict[str, Any] | None) -> ValueLine | None:
    if not data:
        return None
    numerator, denominator = data["numerator"], data["denominator"]
    return ValueLine(
        numerator=numerator,
        denominator=denominator,
        rate=_rate(numerator, denominator),
        points=_dec(data.get("points")),
    )


def _rate(numerator: int | None, denominator: int | None) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator or 0) / Decimal(denominator)).quantize(Decimal("0.0001"))


async def _snapshot(session: AsyncSession, code: str, period: Period) -> tuple[ScoreSnapshot, Unit]:
    unit = await units_repository.get(session, code)
    if unit is None:
        raise NotFound(f"No unit with code {code!r}.")
    found = await repository.snapshots(session, str(period), unit_code=code)
    if not found:
        raise NotFound(f"Unit {code} has no score for {period} (it did not exist then).")
    return found[0], unit


async def scorecard_etag(session: AsyncSession, code: str, period: Period) -> str:
    current = await repository.version(session, str(period))
    return etag_for("scorecard", code, period, current)


async def scorecard(
    session: AsyncSession, catalog: Catalog, code: str, period: Period
) -> Scorecard:
    snap, unit = await _snapshot(session, code, period)
    version = catalog.version(snap.catalog_version)
    if version is None:
        raise NotFound(f"Catalog version {snap.catalog_version} is no longer shipped.")
    state = await repository.state(session, str(period))
    metrics = {m["code"]: m for m in snap.metrics}
    groups: list[GroupLine] = []
    shortfalls: list[MetricLine] = []
    for group, metric in version.metrics():
        data = metrics.get(metric.code, {})
        line = _metric_line(
            data,
            code=metric.code,
            indicator=metric.indicator,
            source=metric.source,
            name=metric.name_vi,
            max_points=metric.max_points,
            full_marks=full_marks_rate(metric.rule, metric.threshold),
        )
        parts = {c.get("code"): c for c in data.get("components", [])}
        line.components = [
            _metric_line(
                parts.get(component.code, {}),
                code=component.code,
                indicator=component.indicator,
                source=component.source,
                name=component.name_vi,
                max_points=component.max_term,
                full_marks=_component_full_marks(component),
            )
            for component in metric.components
        ]
        if not groups or groups[-1].code != group.code:
            groups.append(
                GroupLine(
                    code=group.code,
                    name=group.name_vi,
                    points=_dec(snap.groups.get(group.code)),
                    max_points=group.max_points,
                    lost=None,
                    metrics=[],
                )
            )
        groups[-1].metrics.append(line)
        if line.missing or (line.lost or 0) > 0:
            shortfalls.append(line)
    for group_line in groups:
        group_line.lost = (
            group_line.max_points - group_line.points if group_line.points is not None else None
        )
    shortfalls.sort(key=lambda m: (-(m.lost if m.lost is not None else m.max_points), m.code))

    official_rows = await repository.official(session, [str(period)], unit_code=code)
    official = None
    if official_rows:
        row = official_rows[0]
        official_groups = {k: float(v) for k, v in row.group_scores.items()}
        official = Official(
            total=Decimal(row.total),
            groups=official_groups,
            total_difference=snap.total - Decimal(row.total) if snap.total is not None else None,
            group_differences={
                g: (_dec(snap.groups.get(g)) - Decimal(str(v)))  # type: ignore[operator]
                if snap.groups.get(g) is not None
                else None
                for g, v in official_groups.items()
            },
        )
    previous = next(
        iter(await repository.snapshots(session, str(period.previous()), unit_code=code)), None
    )
    comparable = (
        previous is not None
        and previous.catalog_version == snap.catalog_version
        and previous.total is not None
        and snap.total is not None
        and previous.rank is not None
        and snap.rank is not None
    )
    rank_change = previous.rank - snap.rank if comparable else None  # type: ignore[operator, union-attr]
    score_change = snap.total - previous.total if comparable else None  # type: ignore[operator, union-attr]
    if previous is not None and previous.catalog_version != snap.catalog_version:
        # A version change: the national ranking measured the change against the previous
        # period rescored with this period's rules (see _bridge); show the same figures.
        rank_change, score_change = await _bridged_changes(session, unit.level, code, period)
    return Scorecard(
        unit_code=code,
        name=unit.name,
        level=unit.level,
        period=str(period),
        revision=snap.revision,
        status=state.status,
        catalog_version=snap.catalog_version,
        total=snap.total,
        grade=snap.grade,
        complete=snap.completeness == 1,
        completeness=snap.completeness,
        rank=f"{snap.rank}/{snap.ranked_of}" if snap.rank is not None else None,
        rank_change=rank_change,
        score_change=score_change,
        groups=groups,
        shortfalls=shortfalls,
        official=official,
        pending_amendments=await repository.amendments(session, str(period)),
    )


MAX_HISTORY = 120


def periods_between(start: Period, end: Period, granularity: str) -> list[Period]:
    kind = PeriodKind(granularity)
    first = Period.containing(start.first_day, kind)
    last = Period.containing(end.last_day, kind)
    if last.first_day < first.first_day:
        raise Unprocessable(
            "`to` is before `from`", errors=[{"parameter": "to", "detail": "before from"}]
        )
    found = [last]
    while found[-1] != first:
        found.append(found[-1].previous())
        if len(found) > MAX_HISTORY:
            raise Unprocessable(
                f"at most {MAX_HISTORY} periods per request",
                errors=[{"parameter": "from", "detail": "range too long"}],
            )
    return list(reversed(found))


async def history_etag(session: AsyncSession, code: str, periods: Sequence[Period]) -> str:
    states = await repository.versions(session, [str(p) for p in periods])
    return etag_for("history", code, *[tuple(s) for s in states])


async def history(
    session: AsyncSession, code: str, periods: Sequence[Period], granularity: str
) -> History:
    if await _unknown_unit(session, code):
        raise NotFound(f"No unit with code {code!r}.")
    snaps = {
        s.period: s for s in await repository.history(session, code, [str(p) for p in periods])
    }
    points = []
    for period in periods:
        snap = snaps.get(str(period))
        points.append(
            HistoryPoint(
                period=str(period),
                total=snap.total if snap else None,
                grade=snap.grade if snap else None,
                rank=snap.rank if snap else None,
                ranked_of=snap.ranked_of if snap else None,
                groups=dict(snap.groups) if snap else None,
            )
        )
    return History(unit_code=code, granularity=granularity, items=points)


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
    """Refresh once more, then freeze: later input becomes pending amendments."""
    state = await repository.state(session, str(period))
    if state.status == "closed":
        return
    if period.last_day >= at.date():
        raise Unprocessable(
            f"{period} has not ended yet.", errors=[{"parameter": "period", "detail": "not ended"}]
        )
    before = {"status": state.status, "revision": state.revision}
    await refresh_period(session, settings, catalog, period, at)
    await repository.close(session, str(period), by, at)
    await _restamp_rankings(session, str(period), "closed")
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
    await refresh_period(session, settings, catalog, period, at)
    state = await repository.state(session, str(period))
    after = {"status": state.status, "revision": state.revision}
    await audit.record(session, by, "period.reopen", str(period), before=before, after=after)


async def _restamp_rankings(session: AsyncSession, period: str, status: str) -> None:
    """Closing changes only the status in the rendered rankings (and so their ETags)."""
    rows = (
        await session.scalars(select(RankingSnapshot).where(RankingSnapshot.period == period))
    ).all()
    for row in rows:
        body = orjson.loads(row.body)
        body["status"] = status
        row.body = orjson.dumps(body)
        row.etag = etag_of(row.body)
    await repository.bump(session, period, datetime.now(ZoneInfo("UTC")))


async def closable_months(
    session: AsyncSession, settings: Settings, calendar: Any, at: datetime, after_days: int
) -> list[Period]:
    """Open months whose end lies ``after_days`` working days or more in the past."""
    rows = await session.execute(
        text(
            "SELECT period FROM period_states WHERE status = 'open' AND period ~ '^\\d{4}-\\d{2}$'"
        )
    )
    due = []
    for (name,) in rows:
        month = Period.parse(name)
        end = datetime.combine(
            month.last_day + timedelta(days=1), time(), ZoneInfo(settings.timezone)
        )
        if end <= at and calendar.working_days_between(end, at) >= after_days:
            due.append(month)
    return sorted(due, key=lambda p: p.first_day)
