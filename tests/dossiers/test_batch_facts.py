"""The index facts a batch's events state: kept per dossier as its latest accepted event
states each of them, whatever the batch refused or found in conflict."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.dossiers.facts_repository import facts_of
from tests.helpers import ADMIN, event, province_with_communes, put_procedure

CODE = "H01.01-261130-0001"


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")


async def _facts(engine: AsyncEngine) -> tuple[object, ...] | None:
    async with create_sessionmaker(engine)() as session:
        facts = await facts_of(session, CODE)
    if facts is None:
        return None
    return (
        facts.papers_total, facts.fees_total, facts.databases, facts.payment_code,
        facts.vneid_verified, facts.applicant_kind,
    )  # fmt: skip


async def _post(client: httpx.AsyncClient, events: list[dict[str, object]]) -> list[str]:
    response = await client.post("/v1/dossier-events/batch", json={"events": events}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [item["result"] for item in response.json()["items"]]


async def test_each_fact_is_the_latest_accepted_event_s(
    client: httpx.AsyncClient, setup: None, engine: AsyncEngine
) -> None:
    first = event("e1", CODE, 2, "2026-11-20 10:00", papers_total=3, fees_total=50000,
                  databases=["CSDLDC", "CSDLQG", "CSDLDC"], applicant_kind=2)  # fmt: skip
    results = await _post(client, [
        first,
        event("e2", CODE, 4, "2026-11-20 11:00", papers_total=5),
        # Refused (unknown procedure): what it states is not kept.
        event("e3", CODE, 4, "2026-11-20 12:00", procedure="NOPE", papers_total=99,
              payment_code="3"),
        event("e4", CODE, 4, "2026-11-20 13:00", vneid_verified=True),
    ])  # fmt: skip
    assert results == ["stored", "stored", "rejected", "stored"]
    # papers_total: e2's 5 over e1's 3; each database once, in the order first sent.
    assert await _facts(engine) == (5, Decimal(50000), ("CSDLDC", "CSDLQG"), None, True, 2)

    # A later batch: e1 again (a duplicate: what it states now is kept), e2 with other content
    # (a conflict: nothing kept), then e5 stating another count.
    results = await _post(client, [
        {**first, "databases": ["CSDLQG"], "papers_total": None},
        event("e2", CODE, 5, "2026-11-20 11:00", papers_total=7, payment_code="3"),
        event("e5", CODE, 4, "2026-11-21 09:00", fees_total=0, applicant_kind=1),
    ])  # fmt: skip
    assert results == ["duplicate", "conflict", "stored"]
    assert await _facts(engine) == (5, Decimal(0), ("CSDLQG",), None, True, 1)


async def test_an_item_posted_twice_in_a_batch_keeps_its_latest_statement(
    client: httpx.AsyncClient, setup: None, engine: AsyncEngine
) -> None:
    first = event("e1", CODE, 2, "2026-11-20 10:00", papers_total=3)
    results = await _post(client, [first, {**first, "papers_total": 4, "payment_code": "1"}])
    assert results == ["stored", "duplicate"]
    assert await _facts(engine) == (4, None, None, "1", None, None)
