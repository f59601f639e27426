"""All SQL about portal sync state, quarantine (malformed records, records waiting for their
unit) and official results."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.outbox import add_job
from app.core.principal import Principal
from app.portal.models import OfficialScore, PortalSyncState, PortalUnmapped, QuarantinedRecord
from app.portal.records import minimised
from app.units import repository as units

# The worker job (app/portal/jobs.py) that ingests the records waiting for an identifier.
RELEASE_JOB = "release_unmapped"
# ``source`` of records posted to chiso (the sync's records carry their source's name).
PUSHED = "push"


async def state(session: AsyncSession, source: str) -> PortalSyncState | None:
    return await session.get(PortalSyncState, source, populate_existing=True)


async def advance(
    session: AsyncSession, source: str, cursor: str | None, records: int, at: datetime
) -> None:
    """Store the cursor after a page, in the page's own transaction."""
    stmt = insert(PortalSyncState).values(
        source=source, cursor=cursor, last_run_at=at, records_synced=records, pages_synced=1
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[PortalSyncState.source],
            set_={
                "cursor": stmt.excluded.cursor,
                "last_run_at": stmt.excluded.last_run_at,
                "records_synced": PortalSyncState.records_synced + records,
                "pages_synced": PortalSyncState.pages_synced + 1,
            },
        )
    )


async def finish(session: AsyncSession, source: str, at: datetime, error: str | None) -> None:
    values: dict[str, Any] = {"last_run_at": at}
    if error is None:
        values.update(last_success_at=at)
    else:
        values.update(last_error=error, last_error_at=at)
    stmt = insert(PortalSyncState).values(source=source, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[PortalSyncState.source], set_=values)
    )


def record_hash(raw: Any) -> str:
    return hashlib.sha256(
        json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


async def quarantine(
    session: AsyncSession, source: str, items: Sequence[tuple[Any, list[dict[str, Any]]]]
) -> None:
    """Keep bad records raw with their errors; the same record seen again is counted, once."""
    if not items:
        return
    rows = []
    for raw, errors in items:
        code = raw.get("MaHoSo") if isinstance(raw, dict) else None
        rows.append({
            "source": source,
            "record_hash": record_hash(raw),
            "dossier_code": str(code)[:128] if code else None,
            "raw": raw,
            "errors": errors,
        })  # fmt: skip
    stmt = insert(QuarantinedRecord).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[QuarantinedRecord.source, QuarantinedRecord.record_hash],
            set_={
                "last_seen_at": func.now(),
                "times_seen": QuarantinedRecord.times_seen + 1,
                "errors": stmt.excluded.errors,
            },
        )
    )


async def quarantined(
    session: AsyncSession, source: str | None, after: int | None, limit: int
) -> list[QuarantinedRecord]:
    query = select(QuarantinedRecord).order_by(QuarantinedRecord.id.desc()).limit(limit + 1)
    if source is not None:
        query = query.where(QuarantinedRecord.source == source)
    if after is not None:
        query = query.where(QuarantinedRecord.id < after)
    return list((await session.scalars(query)).all())


async def sync_overview(session: AsyncSession) -> list[Row[Any]]:
    rows = await session.execute(
        text(
            """
            SELECT s.source, s.cursor, s.last_run_at, s.last_success_at, s.last_error,
                   s.last_error_at, s.records_synced, s.pages_synced,
                   (SELECT count(*) FROM portal_quarantine q WHERE q.source = s.source)
                       AS quarantined
            FROM portal_sync_state s ORDER BY s.source
            """
        )
    )
    return list(rows)


async def store_official(session: AsyncSession, source: str, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert published results for known units (one statement); returns how many."""
    if not rows:
        return 0
    stmt = insert(OfficialScore).values([{**r, "source": source} for r in rows])
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[OfficialScore.unit_code, OfficialScore.period],
            set_={
                "time_type": stmt.excluded.time_type,
                "total": stmt.excluded.total,
                "score_delta": stmt.excluded.score_delta,
                "group_scores": stmt.excluded.group_scores,
                "source": stmt.excluded.source,
                "fetched_at": func.now(),
            },
        ).returning(OfficialScore.unit_code)
    )
    return len(result.all())


# --- records waiting for their unit ------------------------------------------------------------


@dataclass(frozen=True)
class UnmappedRecord:
    """A record to keep because no unit answers to ``identifier`` (the token its unit was named
    by: madonvi, MaDinhDanhDV or its MaHoSo prefix). ``record`` is the record as received: it is
    minimised when kept. ``source``: :data:`PUSHED` or the sync source's name. ``principal``:
    who sent it, whose subtree the release keeps to."""

    dossier_code: str
    identifier: str
    record: Mapping[str, Any]
    source: str
    principal: Principal
    madonvi: str | None = None
    is_updating: bool | None = None

    def __post_init__(self) -> None:
        # What could never be a unit's identifier or code cannot be waited for: refuse it.
        if not 0 < len(self.identifier) <= 64 or not 0 < len(self.dossier_code) <= 128:
            raise ValueError("identifier (1-64 characters) or MaHoSo (1-128) out of range")


@dataclass(frozen=True)
class KeptRecord:
    """A row of ``portal_unmapped`` as taken for release (or put back)."""

    id: int
    dossier_code: str
    identifier: str
    source: str
    record: Any
    madonvi: str | None
    is_updating: bool | None
    key_id: uuid.UUID | None
    posted_by: str
    posted_within: str | None
    reason: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    times_seen: int


@dataclass(frozen=True)
class UnmappedCount:
    """What waits for one unknown identifier."""

    identifier: str
    records: int
    held: int  # records a release could not ingest (``reasons`` says why)
    first_seen_at: datetime
    last_seen_at: datetime
    example_dossier_code: str
    reasons: list[str]


async def quarantine_unmapped(session: AsyncSession, items: Sequence[UnmappedRecord]) -> None:
    """Keep records whose unit is unknown, minimised (no personal data), one per (MaHoSo,
    identifier): a record sent again replaces the kept one (and waits again if it was held).

    If an identifier was mapped while these records were being read, the mapping and this
    insert are serialised (:func:`app.units.repository.lock_tokens`): whichever commits second
    sees the other, and here a release is queued at once.
    """
    if not items:
        return
    latest: dict[tuple[str, str], UnmappedRecord] = {}
    for item in items:  # one row per key in a statement; the later record wins
        latest[(item.dossier_code, item.identifier)] = item
    identifiers = {item.identifier for item in latest.values()}
    await units.lock_tokens(session, identifiers)
    rows = [
        {
            "dossier_code": item.dossier_code,
            "identifier": item.identifier,
            "source": item.source,
            "record": minimised(dict(item.record)),
            "madonvi": item.madonvi,
            "is_updating": item.is_updating,
            "key_id": uuid.UUID(item.principal.key_id) if item.principal.key_id else None,
            "posted_by": item.principal.name,
            "posted_within": item.principal.unit_code,
        }
        for item in latest.values()
    ]
    table = cast(Table, PortalUnmapped.__table__)
    stmt = insert(table)
    replaced = ("source", "record", "madonvi", "is_updating", "key_id", "posted_by",
                "posted_within")  # fmt: skip
    # One prepared statement run per row (executemany): a multi-row VALUES of a thousand
    # records costs more to compile than to run.
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.dossier_code, table.c.identifier],
            set_={
                **{column: stmt.excluded[column] for column in replaced},
                "reason": None,
                "last_seen_at": func.now(),
                "times_seen": table.c.times_seen + 1,
            },
        ),
        rows,
    )
    mapped = await units.resolve(session, identifiers)
    if mapped:
        await queue_releases(session, mapped)


async def queue_releases(session: AsyncSession, tokens: Collection[str]) -> list[str]:
    """Record a release job (outbox, with the caller's transaction) for each of ``tokens``
    that records wait for; returns those tokens."""
    if not tokens:
        return []
    waiting = sorted(
        await session.scalars(
            select(PortalUnmapped.identifier)
            .where(PortalUnmapped.identifier.in_(set(tokens)), PortalUnmapped.reason.is_(None))
            .distinct()
        )
    )
    for identifier in waiting:
        add_job(session, RELEASE_JOB, identifier)
    return waiting


async def unmapped_counts(
    session: AsyncSession, *, after: str | None = None, limit: int | None = None
) -> list[UnmappedCount]:
    """Per unknown identifier, in identifier order (keyset: ``after``; ``limit`` + 1 rows)."""
    rows = await session.execute(
        text(
            """
            SELECT identifier, count(*) AS records, count(reason) AS held,
                   min(first_seen_at) AS first_seen_at, max(last_seen_at) AS last_seen_at,
                   (array_agg(dossier_code ORDER BY last_seen_at DESC, id DESC))[1]
                       AS example_dossier_code,
                   coalesce(array_agg(DISTINCT reason) FILTER (WHERE reason IS NOT NULL),
                            '{}') AS reasons
            FROM portal_unmapped
            WHERE CAST(:after AS text) IS NULL OR identifier > :after
            GROUP BY identifier
            ORDER BY identifier
            LIMIT :rows
            """
        ),
        {"after": after, "rows": None if limit is None else limit + 1},
    )
    return [UnmappedCount(**row._asdict()) for row in rows]


async def take_unmapped(session: AsyncSession, identifier: str, limit: int) -> list[KeptRecord]:
    """Claim and delete up to ``limit`` records waiting for ``identifier``, oldest first.

    Rows another release holds are skipped (``SKIP LOCKED``), so releases may run side by
    side; the deletion commits with the caller's ingestion of them, or not at all. Held
    records (with a reason) are not taken: only a re-sent record waits again.
    """
    claimed = (
        select(PortalUnmapped.id)
        .where(PortalUnmapped.identifier == identifier, PortalUnmapped.reason.is_(None))
        .order_by(PortalUnmapped.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    table = cast(Table, PortalUnmapped.__table__)
    rows = await session.execute(delete(table).where(table.c.id.in_(claimed)).returning(*table.c))
    return sorted((KeptRecord(**row._asdict()) for row in rows), key=lambda kept: kept.id)


async def hold_unmapped(session: AsyncSession, kept: Sequence[KeptRecord], reason: str) -> None:
    """Put taken records back, held with ``reason`` (a release does not take them again). A
    record re-sent meanwhile is newer and stays."""
    if not kept:
        return
    table = cast(Table, PortalUnmapped.__table__)
    await session.execute(
        insert(table).on_conflict_do_nothing(
            index_elements=[table.c.dossier_code, table.c.identifier]
        ),
        [{**vars(k), "reason": reason} for k in kept],
    )
