"""Unit identifiers (mã định danh): set, clear, unique, filtered, loaded from CSV, resolved."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.errors import Conflict, Unprocessable
from app.units import repository
from app.units.schemas import UnitRecord
from app.units.service import load_units, parse_units_csv, resolve_units, upsert_units
from tests.helpers import ADMIN, create_key, province_with_communes, put_unit

AG = "000.00.12.H01"  # An Giang province's identifier (the form of Decision 20/2020/QĐ-TTg)
LX = "000.12.01.H01"  # a commune's (made up, same form)


async def put(
    client: httpx.AsyncClient, code: str, body: dict[str, Any], headers: dict[str, str] = ADMIN
) -> httpx.Response:
    return await client.put(f"/v1/units/{code}", json=body, headers=headers)


def commune(parent: str = "H01", **extra: Any) -> dict[str, Any]:
    return {"name": "UBND phường Long Xuyên", "level": "commune", "parent_code": parent, **extra}


async def identifier_of(client: httpx.AsyncClient, code: str) -> str | None:
    body = (await client.get(f"/v1/units/{code}")).json()
    value: str | None = body["identifier"]
    return value


async def test_put_sets_the_identifier_and_every_read_shows_it(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    created = await put(client, "H01.01", commune(identifier=LX))
    assert created.status_code == 201
    assert created.json()["identifier"] == LX
    assert await identifier_of(client, "H01.01") == LX
    listed = (await client.get("/v1/units", params={"parent": "H01"})).json()["items"]
    assert [(u["code"], u["identifier"]) for u in listed] == [("H01.01", LX)]
    # A unit without one says so.
    assert await identifier_of(client, "H01") is None


async def test_left_out_the_identifier_stays_and_null_clears_it(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await put_unit(client, "H01", "province")
    await put(client, "H01.01", commune(identifier=LX))
    renamed = await put(client, "H01.01", {**commune(), "name": "UBND phường Long Xuyên (mới)"})
    assert renamed.status_code == 200
    assert renamed.json()["identifier"] == LX  # a tool that manages names does not erase it
    async with engine.connect() as conn:
        stamp = await conn.execute(text("SELECT updated_at FROM units WHERE code = 'H01.01'"))
        before = stamp.scalar_one()
    same = await put(client, "H01.01", {**commune(), "name": "UBND phường Long Xuyên (mới)",
                                        "identifier": LX})  # fmt: skip
    async with engine.connect() as conn:
        after = await conn.execute(text("SELECT updated_at FROM units WHERE code = 'H01.01'"))
        assert after.scalar_one() == before  # the same identifier again changes nothing
    assert same.status_code == 200
    cleared = await put(client, "H01.01", commune(identifier=None))
    assert cleared.status_code == 200
    assert cleared.json()["identifier"] is None
    assert await identifier_of(client, "H01.01") is None


async def test_an_identifier_held_by_another_unit_is_409_naming_it(
    client: httpx.AsyncClient,
) -> None:
    await province_with_communes(client)
    assert (await put(client, "H01.01", commune(identifier=LX))).status_code == 200
    clash = await put(client, "H01.02", {**commune(), "name": "UBND xã Mỹ Hòa Hưng",
                                         "identifier": LX})  # fmt: skip
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    problem = clash.json()
    assert problem["unit_code"] == "H01.01"
    assert problem["detail"] == (
        f"Identifier '{LX}' already belongs to unit H01.01 (UBND phường Long Xuyên); change or "
        "clear it there first."
    )
    assert problem["errors"] == [
        {"pointer": "#/identifier",
         "detail": f"identifier '{LX}' already belongs to unit H01.01 (UBND phường Long Xuyên)"}
    ]  # fmt: skip
    # Nothing changed: H01.02 has none, H01.01 keeps it; a new unit is not created either.
    assert await identifier_of(client, "H01.02") is None
    assert await identifier_of(client, "H01.01") == LX
    new = await put(client, "H01.03", {**commune(), "identifier": LX})
    assert new.status_code == 409
    assert (await client.get("/v1/units/H01.03")).status_code == 404
    # Moving it is two steps: clear it there, then set it here.
    assert (await put(client, "H01.01", commune(identifier=None))).status_code == 200
    moved = await put(client, "H01.02", {**commune(), "name": "x", "identifier": LX})
    assert (moved.status_code, moved.json()["identifier"]) == (200, LX)


async def test_an_identifier_may_not_be_another_units_code_nor_a_code_another_identifier(
    client: httpx.AsyncClient,
) -> None:
    """Records name units by either: a token meaning two units would send records astray."""
    await province_with_communes(client)
    shadow = await put(client, "H01.02", {**commune(), "identifier": "H05"})
    assert shadow.status_code == 409
    assert shadow.json()["unit_code"] == "H05"
    assert shadow.json()["errors"][0]["pointer"] == "#/identifier"
    # The unit's own code as its identifier is fine.
    assert (await put(client, "H01.02", {**commune(), "identifier": "H01.02"})).status_code == 200
    await put(client, "H01.01", commune(identifier=LX))
    taken_code = await put(client, LX, {**commune(), "name": "named like an identifier"})
    assert taken_code.status_code == 409
    assert taken_code.json()["unit_code"] == "H01.01"
    assert taken_code.json()["errors"][0]["pointer"] == "#/code"


@pytest.mark.parametrize(
    "bad", ["000 00 12", ".000.12", "000_00_12", "000-00-12", "Đ01", "", "1" * 65]
)
async def test_an_identifier_outside_the_pattern_is_422(
    client: httpx.AsyncClient, bad: str
) -> None:
    await put_unit(client, "H01", "province")
    response = await put(client, "H01.01", commune(identifier=bad))
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["#/identifier"]


async def test_units_are_filtered_by_exact_identifier(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put(client, "H01.01", commune(identifier=LX))
    await put(client, "H01", {"name": "UBND tỉnh An Giang", "level": "province", "identifier": AG})

    async def codes(identifier: str) -> list[str]:
        response = await client.get("/v1/units", params={"identifier": identifier})
        assert response.status_code == 200
        return [u["code"] for u in response.json()["items"]]

    assert await codes(LX) == ["H01.01"]
    assert await codes(AG) == ["H01"]
    assert await codes("000.12.01") == []  # exact, not a prefix
    assert await codes("000.12.01.h01") == []  # nor case-folded
    bad = await client.get("/v1/units", params={"identifier": "a b"})
    assert bad.status_code == 422


async def test_an_admin_bound_to_a_unit_sets_identifiers_within_its_subtree_only(
    client: httpx.AsyncClient,
) -> None:
    await province_with_communes(client)
    _, bound = await create_key(client, ["admin"], "H01", name="Sở Nội vụ An Giang")
    inside = await put(client, "H01.01", commune(identifier=LX), headers=bound)
    assert (inside.status_code, inside.json()["identifier"]) == (200, LX)
    outside = await put(client, "H05.01", commune("H05", identifier="000.05.01.H05"),
                        headers=bound)  # fmt: skip
    assert outside.status_code == 403
    assert await identifier_of(client, "H05.01") is None


async def test_the_audit_log_records_the_identifier_change(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    await put(client, "H01.01", commune())
    await put(client, "H01.01", commune(identifier=LX))
    entries = (await client.get("/v1/audit", params={"target": "H01.01"}, headers=ADMIN)).json()
    latest = entries["items"][0]
    assert (latest["before"]["identifier"], latest["after"]["identifier"]) == (None, LX)


# --- CSV --------------------------------------------------------------------------------------

HEADER = "code,name,level,parent_code,valid_from,valid_to,successor_code"


async def load(engine: AsyncEngine, csv_text: str) -> dict[str, bool]:
    async with create_sessionmaker(engine)() as session:
        loaded = await load_units(session, csv_text)
        await session.commit()
    return loaded.changed


def test_the_identifier_column_is_optional_and_blank_means_none() -> None:
    old = parse_units_csv(f"{HEADER}\nH01,An Giang,province,,,,\n")
    assert (old[0].identifier, old[0].sets_identifier) == (None, False)
    new = parse_units_csv(f"{HEADER},identifier\nH01,An Giang,province,,,,,{AG}\nH05,Bắc Ninh,"
                          "province,,,,,\n")  # fmt: skip
    assert [(r.code, r.identifier, r.sets_identifier) for r in new] == [
        ("H01", AG, True), ("H05", None, True)
    ]  # fmt: skip
    with pytest.raises(Unprocessable) as bad:
        parse_units_csv(f"{HEADER},identifier\nH01,An Giang,province,,,,,000 00\n")
    assert bad.value.errors is not None
    assert bad.value.errors[0]["pointer"] == "#/identifier"
    assert bad.value.errors[0]["detail"].startswith("line 2: ")


async def test_a_provinces_csv_sets_identifiers_and_an_old_csv_keeps_them(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    with_ids = (f"{HEADER},identifier\n"
                f"H01,UBND tỉnh An Giang,province,,,,,{AG}\n"
                f"H01.01,UBND phường Long Xuyên,commune,H01,,,,{LX}\n")  # fmt: skip
    assert await load(engine, with_ids) == {"H01": True, "H01.01": True}
    assert (await identifier_of(client, "H01"), await identifier_of(client, "H01.01")) == (AG, LX)
    assert await load(engine, with_ids) == {}  # loading it again changes nothing
    old = f"{HEADER}\nH01,UBND tỉnh An Giang (2025),province,,,,\n"
    assert await load(engine, old) == {"H01": False}
    assert await identifier_of(client, "H01") == AG
    cleared = f"{HEADER},identifier\nH01,UBND tỉnh An Giang (2025),province,,,,,\n"
    assert await load(engine, cleared) == {"H01": False}
    assert await identifier_of(client, "H01") is None


async def test_one_csv_may_swap_two_units_identifiers(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await province_with_communes(client)
    await put(client, "H01.01", commune(identifier=LX))
    await put(client, "H01.02", {**commune(), "identifier": AG})
    swapped = (f"{HEADER},identifier\n"
               f"H01.01,UBND phường Long Xuyên,commune,H01,,,,{AG}\n"
               f"H01.02,UBND xã Mỹ Hòa Hưng,commune,H01,,,,{LX}\n")  # fmt: skip
    assert await load(engine, swapped) == {"H01.01": False, "H01.02": False}
    assert (await identifier_of(client, "H01.01"), await identifier_of(client, "H01.02")) == (
        AG, LX
    )  # fmt: skip


async def test_a_csv_giving_one_identifier_twice_or_one_held_elsewhere_loads_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await province_with_communes(client)
    await put(client, "H05.01", commune("H05", identifier=LX))
    twice = (f"{HEADER},identifier\n"
             f"H01.01,UBND phường Long Xuyên,commune,H01,,,,{AG}\n"
             f"H01.02,UBND xã Mỹ Hòa Hưng,commune,H01,,,,{AG}\n")  # fmt: skip
    with pytest.raises(Unprocessable) as dup:
        await load(engine, twice)
    assert dup.value.errors == [
        {"pointer": "#/1/identifier", "detail": f"identifier '{AG}' is also given to unit H01.01"}
    ]
    held = (f"{HEADER},identifier\n"
            f"H01.01,UBND phường Long Xuyên,commune,H01,,,,{AG}\n"
            f"H01.02,UBND xã Mỹ Hòa Hưng,commune,H01,,,,{LX}\n")  # fmt: skip
    with pytest.raises(Conflict) as clash:
        await load(engine, held)
    assert clash.value.extensions == {"unit_code": "H05.01"}
    assert clash.value.errors is not None
    assert [e["pointer"] for e in clash.value.errors] == ["#/1/identifier"]
    assert await identifier_of(client, "H01.01") is None  # the whole file was refused


# --- resolution ---------------------------------------------------------------------------------


async def test_resolve_units_by_identifier_then_by_code_in_one_query(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await province_with_communes(client)
    await put(client, "H01.01", commune(identifier=LX))
    await put(client, "H01", {"name": "UBND tỉnh An Giang", "level": "province", "identifier": AG})
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async with create_sessionmaker(engine)() as session:
        await session.connection()  # connect first: only the resolution is counted
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            resolved = await resolve_units(
                session, [LX, AG, "H05.01", "H01.01", "000.99.99.H99", "H01.01.MC", ""]
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert resolved == {LX: "H01.01", AG: "H01", "H05.01": "H05.01", "H01.01": "H01.01",
                        "H01.01.MC": "H01.01.MC"}  # fmt: skip
    assert len(statements) == 1
    async with create_sessionmaker(engine)() as session:
        assert await resolve_units(session, []) == {}


# --- schema and races ------------------------------------------------------------------------


async def test_two_admins_giving_one_identifier_at_once_get_one_success_and_one_409(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The second writer's check cannot see the first's uncommitted row: the unique
    constraint stops it, and it is still told which unit took the identifier."""
    await province_with_communes(client)
    sessionmaker = create_sessionmaker(engine)

    def record(code: str) -> UnitRecord:
        return UnitRecord(code=code, name=code, level="commune", parent_code="H01",
                          identifier=LX)  # fmt: skip

    async with sessionmaker() as first, sessionmaker() as second:
        await upsert_units(first, [record("H01.01")])
        racing = asyncio.create_task(upsert_units(second, [record("H01.02")]))
        await asyncio.sleep(0.3)
        assert not racing.done()  # it waits for the first writer's lock on the identifier
        await first.commit()
        with pytest.raises(Conflict) as lost:
            await racing
        assert lost.value.extensions == {"unit_code": "H01.01"}
    assert await identifier_of(client, "H01.01") == LX
    assert await identifier_of(client, "H01.02") is None

    # Past the lock (a writer that skips it), the unique constraint still holds, and the
    # statement's savepoint leaves the transaction usable to name the holder.
    ours = UnitRecord(code="H01.02", name="x", level="commune", parent_code="H01", identifier=AG)
    theirs = UnitRecord(code="H05.01", name="y", level="commune", parent_code="H05", identifier=AG)
    async with sessionmaker() as first, sessionmaker() as second:
        await repository.upsert(first, [ours])
        racing_row = asyncio.create_task(repository.upsert(second, [theirs]))
        await asyncio.sleep(0.3)
        assert not racing_row.done()  # it waits on the first writer's uncommitted row
        await first.commit()
        with pytest.raises(repository.IdentifierTaken):
            await racing_row
        assert await repository.resolve(second, [AG]) == {AG: "H01.02"}
