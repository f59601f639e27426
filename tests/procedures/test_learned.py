"""Procedures by national code: local variants resolve, unknown codes are learned (unverified,
no limit, deadline from the record's appointment), operators list and verify them."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.database import create_sessionmaker
from app.core.migrations import downgrade, upgrade
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from app.procedures.service import ProcedureSeen, portal_procedure, resolve_or_learn
from tests.conftest import (
    TEST_DATABASE,
    Servers,
    drop_database,
    plain_url,
    recreate_database,
    with_database,
)
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

LOCAL = "1.001022.000.00.00.H01"


@pytest.fixture
def sessions(engine: AsyncEngine, clean: None) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


async def _learn(
    sessions: async_sessionmaker[AsyncSession], seen: list[ProcedureSeen]
) -> dict[str, str]:
    async with sessions() as session:
        resolved = await resolve_or_learn(session, seen)
        await session.commit()
    return resolved


async def _procedures(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT code, name, field_code, field_name, verified, learned_at IS NOT NULL "
                "AS learned, limit_value, limit_unit FROM procedures ORDER BY code"
            )
        )
        return [dict(r._mapping) for r in rows]


def seen(code: str, name: str = "", field_code: str = "", field_name: str = "") -> ProcedureSeen:
    return ProcedureSeen(code=code, name=name, field_code=field_code, field_name=field_name)


async def test_national_code_and_local_variants_resolve_to_one_procedure(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    await put_procedure(client, "1.001022", 5, "working_days", name="Cấp giấy phép xây dựng")
    resolved = await _learn(
        sessions, [seen("1.001022"), seen(LOCAL), seen("1.001022.000.00.00.H05", "Tên khác")]
    )
    assert resolved == {
        "1.001022": "1.001022",
        LOCAL: "1.001022",
        "1.001022.000.00.00.H05": "1.001022",
    }
    rows = await _procedures(engine)
    assert [(r["code"], r["name"], r["verified"]) for r in rows] == [
        ("1.001022", "Cấp giấy phép xây dựng", True)
    ]
    # The JSON API reads a local variant the same way.
    fetched = await client.get(f"/v1/procedures/{LOCAL}")
    assert fetched.status_code == 200
    assert fetched.json()["code"] == "1.001022"


async def test_national_form_wins_over_a_stored_local_variant(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # A province stored a variant as a procedure of its own: used while no national one exists.
    await put_procedure(client, LOCAL, 2, "working_days")
    assert await _learn(sessions, [seen(LOCAL)]) == {LOCAL: LOCAL}
    await put_procedure(client, "1.001022", 5, "working_days")
    assert await _learn(sessions, [seen(LOCAL)]) == {LOCAL: "1.001022"}
    # Reading an address gives what was stored there; LayThuTuc answers as records resolve.
    assert (await client.get(f"/v1/procedures/{LOCAL}")).json()["code"] == LOCAL
    async with sessions() as session:
        answer = await portal_procedure(session, LOCAL)
    assert answer is not None and answer["MATTHC"] == "1.001022"


async def test_unknown_procedure_is_learned_once_from_the_first_record(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    resolved = await _learn(
        sessions,
        [
            seen("2.000123.000.00.00.H01", "Chứng thực bản sao", "G09-TP05", "Chứng thực"),
            seen("2.000123", "Another name from a later record", "X", "Y"),
            seen("HCC-01", "  ", "", ""),  # not a national code: learned as sent, named by it
        ],
    )
    assert resolved == {
        "2.000123.000.00.00.H01": "2.000123",
        "2.000123": "2.000123",
        "HCC-01": "HCC-01",
    }
    assert await _procedures(engine) == [
        {"code": "2.000123", "name": "Chứng thực bản sao", "field_code": "G09-TP05",
         "field_name": "Chứng thực", "verified": False, "learned": True,
         "limit_value": None, "limit_unit": None},
        {"code": "HCC-01", "name": "HCC-01", "field_code": None, "field_name": None,
         "verified": False, "learned": True, "limit_value": None, "limit_unit": None},
    ]  # fmt: skip
    # Seen again: resolved, not learned twice nor renamed.
    again = await _learn(sessions, [seen("2.000123.000.00.00.H09", "Renamed?")])
    assert again == {"2.000123.000.00.00.H09": "2.000123"}
    assert [r["name"] for r in await _procedures(engine)] == ["Chứng thực bản sao", "HCC-01"]


async def test_a_field_code_too_long_to_be_one_is_dropped_but_its_name_kept(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    await _learn(sessions, [seen("2.000124", "Thủ tục", "F" * 65, "Lĩnh vực")])
    row = (await _procedures(engine))[0]
    assert (row["field_code"], row["field_name"]) == (None, "Lĩnh vực")


async def test_codes_that_cannot_name_a_procedure_are_not_learned(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    bad = ["", "bad code", "-1.001022", "1.001022/H01", "X" * 65, "Mã-TTHC"]
    resolved = await _learn(sessions, [seen(c, "Tên") for c in bad] + [seen("1.001022./x")])
    # "1.001022./x" is a variant of a valid national code: that one is learned.
    assert resolved == {"1.001022./x": "1.001022"}
    assert [r["code"] for r in await _procedures(engine)] == ["1.001022"]


async def test_concurrent_learners_store_one_procedure(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    async with sessions() as first, sessions() as second:
        assert await resolve_or_learn(first, [seen(LOCAL, "Cấp phép")]) == {LOCAL: "1.001022"}
        # The second learner sees no committed row yet: it must wait for the first, not fail.
        racing = asyncio.create_task(resolve_or_learn(second, [seen("1.001022", "Khác")]))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await first.commit()
        assert await asyncio.wait_for(racing, 10) == {"1.001022": "1.001022"}
        await second.commit()
    rows = await _procedures(engine)
    assert [(r["code"], r["name"]) for r in rows] == [("1.001022", "Cấp phép")]


async def test_batches_learning_overlapping_codes_at_once_do_not_deadlock(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    codes = [f"3.{n:06d}" for n in range(40)]

    async def learn(order: list[str]) -> dict[str, str]:
        return await _learn(sessions, [seen(c) for c in order])

    forward, backward = await asyncio.wait_for(asyncio.gather(learn(codes), learn(codes[::-1])), 20)
    assert forward == backward == {c: c for c in codes}
    assert [r["code"] for r in await _procedures(engine)] == codes


async def test_operators_list_learned_procedures(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await put_procedure(client, "1.001193", 0.5, "working_days")
    await _learn(sessions, [seen("2.000123", "Chứng thực", "G09", "Chứng thực"), seen("2.000001")])
    learned = await client.get("/v1/procedures", params={"verified": "false"})
    assert learned.status_code == 200
    items = learned.json()["items"]
    assert [p["code"] for p in items] == ["2.000001", "2.000123"]
    first = items[1]
    assert (first["verified"], first["limit_value"], first["limit_unit"]) == (False, None, None)
    assert (first["field_code"], first["field_name"]) == ("G09", "Chứng thực")
    assert instant(first["learned_at"]) is not None
    verified = (await client.get("/v1/procedures", params={"verified": "true"})).json()
    assert [(p["code"], p["verified"], p["learned_at"]) for p in verified["items"]] == [
        ("1.001193", True, None)
    ]
    everything = (await client.get("/v1/procedures")).json()
    assert [p["code"] for p in everything["items"]] == ["1.001193", "2.000001", "2.000123"]


async def test_put_verifies_a_learned_procedure_and_keeps_when_it_was_learned(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _learn(sessions, [seen(LOCAL, "Cấp phép", "G01", "Xây dựng")])
    learned = (await client.get("/v1/procedures/1.001022")).json()
    response = await client.put(
        "/v1/procedures/1.001022",
        json={"name": "Cấp phép", "field_code": "G01", "field_name": "Xây dựng",
              "limit_value": 15, "limit_unit": "working_days"},
        headers=ADMIN,
    )  # fmt: skip
    assert response.status_code == 200  # the procedure existed: updated, not created
    body = response.json()
    assert (body["verified"], body["limit_value"], body["limit_unit"]) == (
        True, "15.00", "working_days"
    )  # fmt: skip
    assert body["learned_at"] == learned["learned_at"]
    assert (await client.get("/v1/procedures?verified=false")).json()["items"] == []
    # The change is audited like any other procedure change.
    audit = await client.get("/v1/audit", params={"action": "procedure.upsert"}, headers=ADMIN)
    entries = audit.json()["items"]
    assert [(e["target"], e["before"]["verified"], e["after"]["verified"]) for e in entries] == [
        ("1.001022", False, True)
    ]


async def test_only_a_learned_procedure_may_lack_a_limit(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await put_procedure(client, "1.001193", 1, "working_days")
    with pytest.raises(IntegrityError, match="ck_procedures_limit_stated"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE procedures SET limit_value = NULL, limit_unit = NULL"))
    with pytest.raises(IntegrityError, match="ck_procedures_limit_complete"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE procedures SET verified = false, limit_unit = NULL"))


async def test_learned_procedure_takes_the_appointment_then_the_limit_once_verified(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")
    await _learn(sessions, [seen(LOCAL, "Cấp phép")])
    await post_events(client, [
        event("a1", "APPOINTED", 2, "2026-03-02 08:00", procedure="1.001022",
              due_at="2026-03-10 17:00"),
        event("n1", "NO-DATE", 2, "2026-03-02 08:00", procedure="1.001022"),
        event("d1", "ENDED", 2, "2026-03-02 08:00", procedure="1.001022"),
        event("d2", "ENDED", 9, "2026-03-03 08:00", procedure="1.001022"),
    ])  # fmt: skip
    # No limit yet: the record's appointment (NgayHenTra) is the deadline, or there is none.
    assert instant((await get_dossier(client, "APPOINTED"))["due_at"]) == vn("2026-03-10 17:00")
    assert (await get_dossier(client, "NO-DATE"))["due_at"] is None

    await put_procedure(client, "1.001022", 3, "working_days", name="Cấp phép")
    # The open dossiers are queued again (the finished one keeps what it was judged by).
    async with engine.connect() as conn:
        queued = await conn.execute(text("SELECT dossier_code FROM dossier_backlog ORDER BY 1"))
        assert [r[0] for r in queued] == ["APPOINTED", "NO-DATE"]
    await derive_dossiers({"sessionmaker": sessions, "settings": settings})
    # Received Mon 2 Mar: Tue 3 (1), Wed 4 (2), Thu 5 (3) → due Thu 5 Mar 17:00.
    assert instant((await get_dossier(client, "NO-DATE"))["due_at"]) == vn("2026-03-05 17:00")
    assert instant((await get_dossier(client, "APPOINTED"))["due_at"]) == vn("2026-03-10 17:00")
    assert (await get_dossier(client, "ENDED"))["due_at"] is None

    # Storing the same limit again changes nothing, so nothing is queued.
    await put_procedure(client, "1.001022", 3, "working_days", name="Cấp phép")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dossier_backlog"))).scalar() == 0


async def test_portal_shape_of_a_procedure(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await put_procedure(client, "1.001193", 0.5, "working_days", name="Đăng ký khai sinh",
                        field_code="G09-TP01", field_name="Hộ tịch")  # fmt: skip
    await put_procedure(client, "1.000894", 3, "months", name="Đăng ký kết hôn")
    await _learn(sessions, [seen(LOCAL, "Cấp phép", "G01", "Xây dựng")])
    async with sessions() as session:
        birth = await portal_procedure(session, "1.001193.000.00.00.H01")
        marriage = await portal_procedure(session, "1.000894")
        learned = await portal_procedure(session, "1.001022")
        unknown = await portal_procedure(session, "9.999999")
    assert birth == {
        "MATTHC": "1.001193",
        "TENTTHC": "Đăng ký khai sinh",
        "LINHVUCTHUCHIEN": [{"MALINHVUC": "G09-TP01", "TENLINHVUC": "Hộ tịch"}],
        "THOIHANGIAIQUYET": 0.5,
        "DONVITHOIHAN": "Ngày làm việc",
    }
    assert marriage == {
        "MATTHC": "1.000894",
        "TENTTHC": "Đăng ký kết hôn",
        "LINHVUCTHUCHIEN": [{"MALINHVUC": None, "TENLINHVUC": None}],
        "THOIHANGIAIQUYET": 3,
        "DONVITHOIHAN": "Tháng",
    }
    assert learned == {
        "MATTHC": "1.001022",
        "TENTTHC": "Cấp phép",
        "LINHVUCTHUCHIEN": [{"MALINHVUC": "G01", "TENLINHVUC": "Xây dựng"}],
        "THOIHANGIAIQUYET": None,
        "DONVITHOIHAN": None,
    }
    assert unknown is None


async def test_downgrade_refuses_to_drop_limits_it_cannot_restore(servers: Servers) -> None:
    name = f"{TEST_DATABASE}_learned"
    await recreate_database(servers.server_url, name)
    url = with_database(servers.server_url, name)
    try:
        await asyncio.to_thread(upgrade, url, "0013_learned_procedures")
        conn = await asyncpg.connect(plain_url(url))
        try:
            await conn.execute(
                "INSERT INTO procedures (code, name, verified, learned_at, has_fees, full_online)"
                " VALUES ('1.001022', 'Cấp phép', false, now(), false, false)"
            )
            with pytest.raises(RuntimeError, match="1 learned procedure"):
                await asyncio.to_thread(downgrade, url, "0012_unit_identifiers")
            await conn.execute("UPDATE procedures SET limit_value = 3, limit_unit = 'working_days'")
            await asyncio.to_thread(downgrade, url, "0012_unit_identifiers")
            columns = await conn.fetch(
                "SELECT column_name, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'procedures' AND column_name LIKE 'limit_%' ORDER BY 1"
            )
            assert [tuple(c) for c in columns] == [("limit_unit", "NO"), ("limit_value", "NO")]
        finally:
            await conn.close()
    finally:
        await drop_database(servers.server_url, name)
