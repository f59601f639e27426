"""Rankings: rendered once per refresh into response bodies with their ETags, stored as
snapshots and served from them (so polling costs a version check, not a computation).

A period has one ranking per level nationwide and one per level within each province (or
ministry), from computed scores and, when the portal published them, from official ones.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.settings import Settings
from app.indicators import periods
from app.indicators.periods import Period
from app.scores import repository
from app.scores.models import ScoreSnapshot
from app.units.service import require_unit

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


async def unit_tree(session: AsyncSession) -> list[UnitInfo]:
    """Every unit with its validity and its ancestors (nearest first): who is scored in a
    period, and in which rankings each one stands."""
    rows = await repository.units_with_ancestors(session)
    return [
        UnitInfo(r.code, r.name, r.level, r.valid_from, r.valid_to, tuple(r.ancestors))
        for r in rows
    ]


# --- open data-integrity flags, shown beside each ranked unit (never scored) ----------------

# ``(session, months) -> {unit code: open flags of its subtree in those months}``.
FlagCounts = Callable[[AsyncSession, Sequence[str]], Awaitable[dict[str, int]]]
_flag_counts: list[FlagCounts] = []


def count_flags_with(provider: FlagCounts) -> None:
    """Registered once by the composition root (``app/wiring.py``): the domain that keeps the
    flags sits above scores, so scores asks it through this callable, never by importing it."""
    _flag_counts[:] = [provider]


async def open_flags(session: AsyncSession, months: Sequence[str]) -> dict[str, int]:
    if not _flag_counts:
        raise RuntimeError("no provider of integrity flag counts: import app.wiring first")
    return await _flag_counts[0](session, months)


# --- rendering -------------------------------------------------------------------------------


def ranking_key(source: str, level: str, parent: str | None, period: str) -> str:
    return f"{source}:{level}:{parent or '-'}:{period}"


def competition_ranks(totals: dict[str, Decimal | None]) -> dict[str, int]:
    """1, 2, 2, 4: ties share a rank and the next rank skips. Units without a total are not
    ranked."""
    ordered = sorted((t for t in totals.values() if t is not None), reverse=True)
    first_at: dict[Decimal, int] = {}
    for position, total in enumerate(ordered, start=1):
        first_at.setdefault(total, position)
    return {code: first_at[t] for code, t in totals.items() if t is not None}


def as_number(value: Decimal | None) -> float | None:
    """Points as the stored JSON holds them."""
    return float(value) if value is not None else None


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


def peer_from_snapshot(unit: UnitInfo, snap: ScoreSnapshot) -> Peer:
    return Peer(
        unit=unit,
        total=snap.total,
        grade=snap.grade,
        complete=snap.completeness == 1,
        completeness=snap.completeness,
        groups=dict(snap.groups),
        catalog_version=snap.catalog_version,
    )


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


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
                "total": as_number(peer.total),
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


def render(
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
    """Every ranking of a period, ready to store: per level nationwide, and per level within
    each province (or ministry)."""
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


async def restamp(session: AsyncSession, period: str, status: str) -> None:
    """Closing changes only the status in the rendered rankings (and so their ETags)."""
    restamped = []
    for row in await repository.rankings_of(session, period):
        body = orjson.loads(row.body)
        body["status"] = status
        rendered = orjson.dumps(body)
        restamped.append(
            {
                "key": row.key,
                "period": row.period,
                "etag": etag_of(rendered),
                "body": rendered,
                "computed_at": row.computed_at,
            }
        )
    await repository.save_rankings(session, restamped)


# --- reading ---------------------------------------------------------------------------------


async def stored_etag(session: AsyncSession, key: str) -> str | None:
    """The stored ranking's ETag (one primary-key lookup), None if it was never rendered."""
    return await repository.ranking_etag(session, key)


async def empty_ranking(
    session: AsyncSession,
    settings: Settings,
    *,
    source: str,
    level: str,
    parent: str | None,
    period: Period,
    at: datetime,
) -> tuple[str, bytes]:
    """``(etag, body)`` when the period is computed but no unit of that level (under that
    parent) is ranked: an empty list of the same shape; 404 for a parent that is no unit."""
    if parent is not None:
        await require_unit(session, parent)
    body = orjson.dumps(
        {
            "level": level,
            "parent": parent,
            "period": str(period),
            "source": source,
            "catalog_version": None,
            "revision": 1,
            "status": "open",
            "projected": not periods.has_ended(period, settings, at),
            "ranked": 0,
            "computed_at": at.isoformat(),
            "items": [],
            "next": None,
        }
    )
    return etag_of(body), body


async def ranking_body(session: AsyncSession, key: str) -> bytes:
    snap = await repository.ranking(session, key)
    if snap is None:
        raise NotFound("ranking not found")
    return bytes(snap.body)
