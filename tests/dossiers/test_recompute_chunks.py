"""Re-deriving the open dossiers a calendar change touches, a chunk per transaction."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import recompute_open_dossiers
from tests.helpers import (
    ADMIN,
    event,
    get_dossier,
    instant,
    post_events,
    put_procedure,
    put_unit,
    vn,
)


async def test_every_open_dossier_moves_whatever_the_chunk_size(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")
    await put_procedure(client, "P3", 3, "working_days")
    # Five open dossiers received Mon 2 Mar: due Thu 5 Mar 17:00 (Tue, Wed, Thu).
    codes = [f"OPEN-{n}" for n in range(5)]
    await post_events(
        client, [event(f"e{n}", code, 2, "2026-03-02 08:00", procedure="P3")
                 for n, code in enumerate(codes)]
    )  # fmt: skip
    # Wed 4 Mar becomes a day off: Tue 3, Thu 5, Fri 6 → due Fri 6 Mar 17:00. The request
    # hands the job to the queue; here it runs directly, two dossiers per transaction.
    response = await client.put(
        "/v1/calendar/days/2026-03-04", json={"kind": "holiday", "reason": "bão"}, headers=ADMIN
    )
    assert response.status_code == 200
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings, "recompute_chunk": 2}
    assert await recompute_open_dossiers(ctx, "2026-03-04") == 5  # chunks of 2, 2 and 1
    for code in codes:
        assert instant((await get_dossier(client, code))["due_at"]) == vn("2026-03-06 17:00")
    assert await recompute_open_dossiers(ctx, "2026-03-04") == 5  # idempotent
