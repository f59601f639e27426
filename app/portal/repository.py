"""All SQL about portal sync state, quarantine and official results."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.portal.models import OfficialScore, PortalSyncState, QuarantinedRecord


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
