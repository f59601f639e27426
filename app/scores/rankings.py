"""Rankings: rendered once per refresh into response bodies with their ETags, stored as
snapshots and served from them (so polling costs a version check, not a computation).

A period has one ranking per level nationwide and one per level within each province (or
ministry), from computed scores and, when the portal published them, from official ones.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.numbers import number, percent
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
    """Points as the stored snapshots hold them (unrounded: JSON answers round them)."""
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


def peer_from_row(unit: UnitInfo, snap: Any) -> Peer:
    """A peer from a stored snapshot's figures (a :class:`ScoreSnapshot` or a row of
    :func:`app.scores.repository.peer_rows`)."""
    return peer_from_snapshot(unit, snap)


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


# --- the stored body, its format and its ETag ------------------------------------------------
#
# A ranking is stored as the exact JSON it is served as. Its first member is `inputs_pending`,
# rendered false: a request for a period whose inputs changed since serves the body with that
# one member swapped (no parsing), under an ETag of its own. The ETag names the format of the
# body: a body stored in an earlier format (before points and rates became rounded numbers
# and ranks got their `of`) is re-rendered from itself the first time it is asked for
# (:func:`upgrade`), so no client is served the old shape, or a 304 for it, after an upgrade.

FORMAT = 2
_ETAG_PREFIX = f'"r{FORMAT}-'
_SETTLED = b'{"inputs_pending":false,'
_PENDING = b'{"inputs_pending":true,'


def etag_of(body: bytes) -> str:
    return _ETAG_PREFIX + hashlib.sha256(body).hexdigest()[:32] + '"'


def current_format(etag: str) -> bool:
    """Whether a stored ranking (known by its ETag) was rendered in today's format."""
    return etag.startswith(_ETAG_PREFIX)


def served_etag(etag: str, pending: bool) -> str:
    """The ETag of the stored body as served: a pending-inputs variant has its own."""
    return etag[:-1] + '-p"' if pending else etag


def served_body(body: bytes, pending: bool) -> bytes:
    """The stored body as served: ``inputs_pending`` true when inputs wait for a refresh."""
    if pending and body.startswith(_SETTLED):
        return _PENDING + body[len(_SETTLED) :]
    return body


def _item(
    *,
    rank: int | None,
    of: int,
    code: str,
    name: str,
    total: Decimal | float | None,
    grade: str | None,
    complete: bool,
    completeness: Decimal | float,
    groups: dict[str, Any],
    rank_change: int | None,
    score_change: Decimal | float | None,
    flags: int,
) -> dict[str, Any]:
    """One ranked unit in the published number format (points and completeness as rounded
    numbers: ``app/core/numbers.py``)."""
    return {
        "rank": rank,
        "of": of,
        "unit_code": code,
        "name": name,
        "total": number(total),
        "grade": grade,
        "complete": complete,
        "completeness": number(percent(completeness)),
        "groups": {g: number(v) for g, v in groups.items()},
        "rank_change": rank_change,
        "score_change": number(score_change),
        "integrity_flags": flags,
    }


def _instant(at: datetime | str) -> str:
    """An instant as every JSON answer writes it (UTC, ``Z``, as Pydantic renders it)."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _body(
    *,
    at: datetime | str,
    level: str,
    parent: str | None,
    period: str,
    source: str,
    catalog_version: str | None,
    revision: int,
    status: str,
    projected: bool,
    ranked: int,
    items: list[dict[str, Any]],
) -> bytes:
    body = {
        "inputs_pending": False,  # first: swapped when served for a period with inputs pending
        "computed_at": _instant(at),
        "level": level,
        "parent": parent,
        "period": period,
        "source": source,
        "catalog_version": catalog_version,
        "revision": revision,
        "status": status,
        "projected": projected,  # the period is still running: totals will move
        "ranked": ranked,
        "items": items,
        "next": None,
    }
    return orjson.dumps(body)


def upgrade(stored: bytes) -> bytes:
    """A body stored in the first format (numbers as computed, ``completeness`` a fraction,
    no ``of``, no ``inputs_pending``) in today's, from itself: closed periods are never
    recomputed, and their published figures stay what they were."""
    old = orjson.loads(stored)
    if "inputs_pending" in old:
        return stored
    ranked = int(old["ranked"])
    items = [
        _item(
            rank=i["rank"],
            of=ranked,
            code=i["unit_code"],
            name=i["name"],
            total=i["total"],
            grade=i["grade"],
            complete=i["complete"],
            completeness=i["completeness"],
            groups=i["groups"],
            rank_change=i["rank_change"],
            score_change=i["score_change"],
            flags=i.get("integrity_flags", 0),
        )
        for i in old["items"]
    ]
    return _body(
        at=old["computed_at"], level=old["level"], parent=old["parent"], period=old["period"],
        source=old["source"], catalog_version=old["catalog_version"], revision=old["revision"],
        status=old["status"], projected=old.get("projected", False), ranked=ranked, items=items,
    )  # fmt: skip


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
    shown: dict[str, tuple[Any, Any, dict[str, Any]]] | None = None,
) -> bytes:
    """``shown``: each peer's total, completeness and groups as published, formatted once for
    all the rankings a unit stands in."""
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
        if shown is not None:
            total, completeness, groups = shown[peer.unit.code]
            items.append(
                {
                    "rank": ranks.get(peer.unit.code),
                    "of": len(ranks),
                    "unit_code": peer.unit.code,
                    "name": peer.unit.name,
                    "total": total,
                    "grade": peer.grade,
                    "complete": peer.complete,
                    "completeness": completeness,
                    "groups": groups,
                    "rank_change": previous_ranks[peer.unit.code] - ranks[peer.unit.code]
                    if comparable
                    else None,
                    "score_change": number(peer.total - before.total)  # type: ignore[operator, union-attr]
                    if comparable
                    else None,
                    "integrity_flags": peer.integrity_flags,
                }
            )
            continue
        items.append(
            _item(
                rank=ranks.get(peer.unit.code),
                of=len(ranks),
                code=peer.unit.code,
                name=peer.unit.name,
                total=peer.total,
                grade=peer.grade,
                complete=peer.complete,
                completeness=peer.completeness,
                groups=peer.groups,
                rank_change=previous_ranks[peer.unit.code] - ranks[peer.unit.code]
                if comparable
                else None,
                score_change=peer.total - before.total  # type: ignore[operator, union-attr]
                if comparable
                else None,
                flags=peer.integrity_flags,
            )
        )
    return _body(
        at=at, level=level, parent=parent, period=period, source=source,
        catalog_version=catalog_version, revision=revision, status=status, projected=projected,
        ranked=len(ranks), items=items,
    )  # fmt: skip


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
    earlier: dict[tuple[str, str | None], dict[str, Peer]] = defaultdict(dict)
    for code, peer in previous.items():
        earlier[(peer.unit.level, None)][code] = peer
        for ancestor in peer.unit.ancestors:
            earlier[(peer.unit.level, ancestor)][code] = peer
    # Each distinct group value formatted once: a period's units share few of them, asked
    # tens of thousands of times.
    published = functools.cache(number)
    shown = {
        code: (
            number(p.total),
            number(percent(p.completeness)),
            {g: published(v) for g, v in p.groups.items()},
        )
        for code, p in current.items()
    }
    out = []
    for (level, parent), peers in groups.items():
        if parent is not None and parent not in parents:
            continue
        before = earlier.get((level, parent), {})
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
            shown=shown,
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
        body = orjson.loads(upgrade(bytes(row.body)))
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


async def upgrade_period(session: AsyncSession, period: str) -> int:
    """Re-render, from themselves, the period's stored rankings of an earlier format (see
    :func:`upgrade`); the caller commits. Returns how many were re-rendered."""
    await repository.lock_period(session, period)  # not while a refresh renders them anew
    upgraded = []
    for row in sorted(await repository.rankings_of(session, period), key=lambda r: r.key):
        stored = bytes(row.body)
        if stored.startswith(_SETTLED):
            continue  # rendered in today's format
        body = upgrade(stored)
        upgraded.append(
            {
                "key": row.key,
                "period": row.period,
                "etag": etag_of(body),
                "body": body,
                "computed_at": row.computed_at,
            }
        )
    await repository.save_rankings(session, upgraded)
    return len(upgraded)


# --- reading ---------------------------------------------------------------------------------


async def head(session: AsyncSession, key: str, period: str) -> tuple[str | None, bool]:
    """``(stored ETag, inputs pending)``: the stored ranking's ETag (None if it was never
    rendered) and whether input for the period waits for a refresh, in one round trip."""
    return await repository.ranking_head(session, key, period)


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
    state = await repository.existing_state(session, str(period))
    body = _body(
        at=(state.refreshed_at if state and state.refreshed_at else at),
        level=level,
        parent=parent,
        period=str(period),
        source=source,
        catalog_version=None,
        revision=state.revision if state else 1,
        status=state.status if state else "open",
        projected=not periods.has_ended(period, settings, at),
        ranked=0,
        items=[],
    )
    return etag_of(body), body


async def ranking_body(session: AsyncSession, key: str) -> bytes:
    snap = await repository.ranking(session, key)
    if snap is None:
        raise NotFound("ranking not found")
    return bytes(snap.body)
