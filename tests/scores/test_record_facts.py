"""The facts the record-based counts read, kept on each dossier as flags (``record_facts``,
migration 0022): what each fact sets, and that the flags — and the scores — follow the facts
whichever way they arrive (before the dossier is derived, after it, re-sent alone, deleted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from app.scores.repository import RECORD_FACTS
from tests.conftest import plain_url
from tests.helpers import ADMIN, create_key, put_procedure
from tests.scores.test_records import card, lines, paper, record, refresh, result

__all__ = ["refresh"]  # the fixture, shared with the records' tests

# (facts as SQL values, the flags by hand: 1 result with a file, 2 every fee 0, 4 a payment
# code, 8 paid online, 16 "digitised parts" stated, 32 … true, 64 a digitised paper, 128 a
# paper with a file, 256 a paper from the store, 512 population data).
CASES: dict[str, tuple[dict[str, str], int]] = {
    "F-NOTHING": ({}, 0),
    "F-ZEROES": ({"results_with_file": "0", "papers_with_file": "0", "papers_digitised": "0"}, 0),
    "F-RESULT": ({"results_with_file": "2"}, 1),
    "F-FREE": ({"fees_all_zero": "true", "payment_code": "'0'"}, 2 + 4),
    "F-FEES": ({"fees_all_zero": "false", "payment_code": "'3'"}, 4),
    "F-PORTAL": ({"payment_code": "'1'"}, 4 + 8),
    "F-GATEWAY": ({"payment_code": "'2'"}, 4 + 8),
    "F-NOT-PARTS": ({"has_digitised_parts": "false", "papers_digitised": "2"}, 16 + 64),
    "F-PARTS": ({"has_digitised_parts": "true"}, 16 + 32),
    "F-STORE": ({"papers_with_file": "3", "papers_from_national_store": "1"}, 128 + 256 + 512),
    "F-CSDLQGDC": ({"databases": "ARRAY['CSDLQGDC']"}, 512),
    "F-ONE": ({"databases": "ARRAY['7', '1']"}, 512),
    "F-OTHER-DB": ({"databases": "ARRAY['2']"}, 0),
    "F-VNEID": ({"vneid_verified": "true"}, 512),
    "F-NOT-VNEID": ({"vneid_verified": "false"}, 0),
}


async def test_each_fact_sets_the_flag_the_counts_read(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    assert RECORD_FACTS == {
        "result_with_file": 1, "fees_all_zero": 2, "payment_stated": 4, "payment_online": 8,
        "digitised_parts_stated": 16, "digitised_parts": 32, "paper_digitised": 64,
        "paper_with_file": 128, "paper_from_store": 256, "population_data": 512,
    }  # fmt: skip
    async with engine.begin() as conn:
        for code, (facts, _) in CASES.items():
            names = ", ".join(["dossier_code", *facts])
            values = ", ".join([f"'{code}'", *facts.values()])
            await conn.execute(text(f"INSERT INTO dossier_facts ({names}) VALUES ({values})"))
        found = dict(
            (
                await conn.execute(
                    text("SELECT dossier_code, chiso_record_facts(f) FROM dossier_facts f")
                )
            ).all()
        )
    assert found == {code: flags for code, (_, flags) in CASES.items()}


def _ctx(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
    return {"sessionmaker": create_sessionmaker(engine), "settings": settings}


async def _queue(client: httpx.AsyncClient, records: list[dict[str, Any]]) -> None:
    """Records as a province's sync sends them: stored and queued, derived by the worker."""
    response = await client.post("/v1/portal/dossiers?madonvi=H01.01", json=records, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["error_code"] == 0, response.text


async def _flags(engine: AsyncEngine, code: str) -> int | None:
    async with engine.connect() as conn:
        flags: int | None = await conn.scalar(
            text("SELECT record_facts FROM dossiers WHERE code = :c"), {"c": code}
        )
    return flags


def _results(scorecard: dict[str, Any]) -> tuple[int, int]:
    line = lines(scorecard)["ORIGINAL_RESULT_AVAILABLE"]
    return line["numerator"], line["denominator"]


async def test_a_record_resent_with_only_new_facts_moves_its_dossiers_counts(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    refresh: Callable[[], Any],
) -> None:
    """The second sending says nothing new of the dossier's progress (its events are
    duplicates) but now gives the result's file: the dossier is derived again, its flags
    follow and its month is rescored — 4.1 goes from 0 of 1 to 1 of 1."""
    code = "H01.01-261201-0001"
    first = record(1, "FEE", DanhSachGiayToKetQua=[result(file=False)])
    await _queue(client, [first])
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    assert await _flags(engine, code) == 0  # facts kept, none of them counted
    await refresh()
    assert _results(await card(client, "H01.01")) == (0, 1)

    await _queue(client, [{**first, "DanhSachGiayToKetQua": [result()]}])
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    assert await _flags(engine, code) == RECORD_FACTS["result_with_file"]
    await refresh()
    assert _results(await card(client, "H01.01")) == (1, 1)

    # The same record once more: nothing changed, nothing is queued or rescored.
    await _queue(client, [{**first, "DanhSachGiayToKetQua": [result()]}])
    assert await derive_dossiers(_ctx(engine, settings)) == 0


async def test_facts_kept_before_a_dossier_is_derived_are_on_its_first_state(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, refresh: Any
) -> None:
    await _queue(client, [record(2, "FREE", TaiKhoanDuocXacThucVoiVNeID="1")])
    code = "H01.01-261201-0002"
    assert await _flags(engine, code) is None  # no state yet
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    assert await _flags(engine, code) == RECORD_FACTS["population_data"]


async def test_facts_deleted_by_an_operator_leave_the_dossier_without_flags(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, refresh: Any
) -> None:
    await _queue(client, [record(3, "FEE", DanhSachGiayToKetQua=[result()])])
    await derive_dossiers(_ctx(engine, settings))
    code = "H01.01-261201-0003"
    assert await _flags(engine, code) == RECORD_FACTS["result_with_file"]
    async with engine.begin() as conn:  # as in psql
        await conn.execute(text("DELETE FROM dossier_facts WHERE dossier_code = :c"), {"c": code})
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    assert await _flags(engine, code) is None


async def test_a_sync_asking_for_derivation_now_finds_the_facts_on_the_state(
    client: httpx.AsyncClient, engine: AsyncEngine, refresh: Any
) -> None:
    """``Prefer: return=representation`` derives in the request, after the facts are kept."""
    response = await client.post(
        "/v1/portal/dossiers?madonvi=H01.01",
        json=[record(4, "FREE", TaiLieuNop=[paper()])],
        headers={**ADMIN, "Prefer": "return=representation"},
    )
    assert response.status_code == 200, response.text
    assert await _flags(engine, "H01.01-261201-0004") == RECORD_FACTS["paper_with_file"]


async def test_facts_written_while_a_worker_derives_the_dossier_queue_it_again_after(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    database_url: str,
    refresh: Any,
) -> None:
    """A worker's claim on the dossier's queue row (its uncommitted delete: it derives from
    what it could see) holds the facts' statement until it ends; then the dossier is queued
    again, so the new facts are never left behind a derivation that did not see them."""
    code = "H01.01-261201-0005"
    await _queue(client, [record(5, "FREE")])
    worker = await asyncpg.connect(plain_url(database_url))
    desk = await asyncpg.connect(plain_url(database_url))
    try:
        claim = worker.transaction()
        await claim.start()
        assert await worker.fetchval(
            "DELETE FROM dossier_backlog WHERE dossier_code = $1 RETURNING dossier_code", code
        )
        facts = asyncio.create_task(
            desk.execute(
                "INSERT INTO dossier_facts (dossier_code, results_with_file) VALUES ($1, 1) "
                "ON CONFLICT (dossier_code) DO UPDATE SET results_with_file = 1",
                code,
            )
        )
        await asyncio.sleep(0.3)
        assert not facts.done()  # waiting for the claim to end
        await claim.commit()
        assert await facts == "INSERT 0 1"
        assert (
            await worker.fetchval(
                "SELECT count(*) FROM dossier_backlog WHERE dossier_code = $1", code
            )
            == 1
        )
    finally:
        await worker.close()
        await desk.close()
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    assert await _flags(engine, code) == RECORD_FACTS["result_with_file"]


async def test_another_units_key_cannot_change_a_dossiers_facts_or_requeue_it(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, refresh: Any
) -> None:
    """A commune re-sending another commune's record with a result file: the record is
    refused, the facts stay as they were, and nothing is queued or derived again."""
    code = "H01.01-261201-0006"
    first = record(6, "FEE", DanhSachGiayToKetQua=[result(file=False)])
    await _queue(client, [first])
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    _, other = await create_key(client, ["dossiers:write"], "H01.02")
    response = await client.post(
        "/v1/portal/dossiers?madonvi=H01.02",
        json=[{**first, "DanhSachGiayToKetQua": [result()]}],
        headers=other,
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["items"][0]["result"] == "rejected"
    assert await derive_dossiers(_ctx(engine, settings)) == 0
    assert await _flags(engine, code) == 0


async def test_a_procedure_that_stops_asking_for_a_paper_result_rescores_its_months(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    refresh: Callable[[], Any],
) -> None:
    """4.1 counts the dossiers of procedures that return a paper result. An operator says FEE
    no longer does: its dossiers are derived again and their month rescored, without waiting
    for another event — 0 of 1 becomes 0 of 0. Renaming it changes no count: nothing is
    queued."""
    await _queue(client, [record(1, "FEE", DanhSachGiayToKetQua=[result(file=False)])])
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    await refresh()
    assert _results(await card(client, "H01.01")) == (0, 1)

    await put_procedure(client, "FEE", 3, has_fees=True, paper_result=False)
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    await refresh()
    assert _results(await card(client, "H01.01")) == (0, 0)

    await put_procedure(client, "FEE", 3, has_fees=True, paper_result=False, name="Thủ tục mới")
    assert await derive_dossiers(_ctx(engine, settings)) == 0


async def test_a_procedure_that_starts_charging_fees_rescores_its_months(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    refresh: Callable[[], Any],
) -> None:
    """3.6 (A) counts the dossiers of procedures with fees. FREE starts charging: its
    dossier, paid through the national portal, is charged and paid online — 0 of 0 becomes
    1 of 1 for the paid-online component."""
    await _queue(client, [record(1, "FREE", DuocThanhToanTrucTuyen="1")])
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    await refresh()
    assert _paid(await card(client, "H01.01")) == (0, 0)

    await put_procedure(client, "FREE", 3, has_fees=True, paper_result=False)
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    await refresh()
    assert _paid(await card(client, "H01.01")) == (1, 1)


def _paid(scorecard: dict[str, Any]) -> tuple[int, int]:
    line = lines(scorecard)["ONLINE_PAYMENT.A"]
    return line["numerator"], line["denominator"]


async def test_an_operators_update_of_a_procedures_fees_in_psql_rescores_its_months_too(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    refresh: Callable[[], Any],
) -> None:
    """Not through the API: an operator's own ``UPDATE procedures`` queues the procedure's
    dossiers as well (the database does it), so 3.6 (A) follows — 0 of 0 becomes 1 of 1; an
    update of anything else queues nothing."""
    await _queue(client, [record(1, "FREE", DuocThanhToanTrucTuyen="1")])
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    await refresh()
    assert _paid(await card(client, "H01.01")) == (0, 0)

    async with engine.begin() as conn:  # as in psql
        await conn.execute(text("UPDATE procedures SET name = 'Đổi tên' WHERE code = 'FREE'"))
    assert await derive_dossiers(_ctx(engine, settings)) == 0
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE procedures SET has_fees = true WHERE code = 'FREE'"))
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    await refresh()
    assert _paid(await card(client, "H01.01")) == (1, 1)
