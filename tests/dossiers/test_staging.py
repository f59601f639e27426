"""The staged batch's transaction settings: the store statement may hash its checks in memory
that grows with the batch, for that transaction only."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.dossiers import repository
from app.dossiers.schemas import Channel, DossierEventIn, DossierStatus


def _rows(count: int) -> list[repository.EventRow]:
    event = DossierEventIn(
        event_id="e-1",
        dossier_code="H26.00004-261008-0001",
        unit_code="H26.00004",
        procedure_code="1.001",
        status=DossierStatus.accepted,
        occurred_at=datetime(2026, 10, 8, 1, 30, tzinfo=UTC),
        channel=Channel.in_person,
    )
    return [repository.row_of(i, event) for i in range(count)]


async def test_work_mem_grows_with_the_staged_batch_for_its_transaction_only(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        default = (await conn.execute(text("SHOW work_mem"))).scalar_one()
    # 24 kB per event, never under 4 MB: 10 events → 4 MB (the floor), 1,000 → 24,000 kB.
    for events, expected in ((10, "4MB"), (1_000, "24000kB")):
        async with AsyncSession(engine) as session:
            await repository.stage_events(session, _rows(events))
            assert (await session.execute(text("SHOW work_mem"))).scalar_one() == expected
            staged = await session.execute(text(f"SELECT count(*) FROM {repository.STAGED}"))
            assert staged.scalar_one() == events
            await session.rollback()
            # Local to the transaction: the connection goes back to the pool as it came.
            assert (await session.execute(text("SHOW work_mem"))).scalar_one() == default
