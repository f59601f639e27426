"""Records whose unit nothing resolves: kept minimised, counted per identifier, released once
the identifier is mapped (as the key that sent them, within its subtree), never lost."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.auth import Principal, Scope
from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from app.portal.jobs import release_unmapped
from app.portal.repository import UnmappedRecord, quarantine_unmapped
from app.units.service import load_units
from tests.helpers import ADMIN, create_key, get_dossier, put_procedure, put_unit
from worker.settings import JOBS, worker_options

LX = "000.12.01.H01"  # the identifier of commune H01.01 (not yet known to chiso)
KB = "000.05.01.H05"  # the identifier of commune H05.01


def record(code: str, status: str = "2", **extra: str) -> dict[str, Any]:
    """A DongBoHoSoMC record as a one-stop system sends it, the applicant's identity included."""
    return {
        "MaHoSo": code,
        "MaTTHC": "P5",
        "TenTTHC": "Cấp giấy phép xây dựng",
        "KenhThucHien": "2",
        "ChuHoSo": "Trần Văn Bình",
        "SoDienThoai": "0987654321",
        "Email": "binh.tran@example.vn",
        "SoGiayToChuHoSo": "079203001234",
        "NgayTiepNhan": "20260302080000",
        "NgayHenTra": "20260309170000",
        "TrangThaiHoSo": status,
        **extra,
    }


DOSSIER = f"{LX}-260302-0001"


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01", name="UBND phường Long Xuyên")
    await put_unit(client, "H05", "province")
    await put_unit(client, "H05.01", "commune", "H05")
    await put_procedure(client, "P5", 5, "working_days")


async def sender(
    client: httpx.AsyncClient, unit: str | None = "H01", name: str = "Một cửa An Giang"
) -> tuple[Principal, dict[str, str]]:
    """A one-stop system's key (dossiers:write) and the caller it authenticates as."""
    key_id, headers = await create_key(client, ["dossiers:write"], unit, name=name)
    principal = Principal(
        name=name, scopes=frozenset({Scope.dossiers_write}), unit_code=unit, key_id=key_id
    )
    return principal, headers


def unmapped(
    raw: dict[str, Any],
    principal: Principal,
    identifier: str = LX,
    source: str = "push",
    is_updating: bool | None = False,
) -> UnmappedRecord:
    return UnmappedRecord(
        dossier_code=raw["MaHoSo"], identifier=identifier, record=raw, source=source,
        principal=principal, madonvi=identifier, is_updating=is_updating,
    )  # fmt: skip


async def keep(engine: AsyncEngine, *items: UnmappedRecord) -> None:
    async with create_sessionmaker(engine)() as session:
        await quarantine_unmapped(session, items)
        await session.commit()


async def kept(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM portal_unmapped ORDER BY id"))
        return [dict(r._mapping) for r in rows]


async def outbox(engine: AsyncEngine) -> list[tuple[str, list[Any]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT function, args FROM outbox ORDER BY id"))
        return [(r.function, r.args) for r in rows]


def ctx(engine: AsyncEngine, settings: Settings, **extra: Any) -> dict[str, Any]:
    return {"sessionmaker": create_sessionmaker(engine), "settings": settings, **extra}


async def map_identifier(
    engine: AsyncEngine, code: str, identifier: str | None, parent: str = "H01"
) -> list[str]:
    """Give ``code`` its identifier as a province's CSV does; returns the releases queued."""
    csv = (
        "code,name,level,parent_code,valid_from,valid_to,successor_code,identifier\n"
        f"{code},UBND {code},commune,{parent},,,,{identifier or ''}\n"
    )
    async with create_sessionmaker(engine)() as session:
        loaded = await load_units(session, csv)
        await session.commit()
    return loaded.released


# --- keeping ------------------------------------------------------------------------------------


async def test_a_record_of_an_unknown_unit_is_kept_minimised_and_a_resend_replaces_it(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    desk, _ = await sender(client)
    await keep(engine, unmapped(record(DOSSIER), desk))
    first = await kept(engine)
    assert len(first) == 1
    await keep(engine, unmapped(record(DOSSIER, "4"), desk, is_updating=True))
    rows = await kept(engine)
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("dossier_code", "identifier", "source", "madonvi",
                                "is_updating", "posted_by", "posted_within", "reason",
                                "times_seen")} == {
        "dossier_code": DOSSIER, "identifier": LX, "source": "push", "madonvi": LX,
        "is_updating": True, "posted_by": "Một cửa An Giang", "posted_within": "H01",
        "reason": None, "times_seen": 2,
    }  # fmt: skip
    assert row["key_id"] == uuid.UUID(desk.key_id or "")
    # The latest record is the one kept; first seen stays, last seen moves.
    assert row["record"]["TrangThaiHoSo"] == "4"
    assert row["first_seen_at"] == first[0]["first_seen_at"] < row["last_seen_at"]
    # Minimised: none of the applicant's identity is kept, in any field.
    for field in ("ChuHoSo", "SoDienThoai", "Email", "SoGiayToChuHoSo"):
        assert field not in row["record"]
    stored = str(row["record"])
    for value in ("Trần Văn Bình", "0987654321", "binh.tran", "079203001234"):
        assert value not in stored


async def test_one_batch_may_carry_a_record_twice_the_later_one_is_kept(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    desk, _ = await sender(client)
    await keep(engine, unmapped(record(DOSSIER), desk), unmapped(record(DOSSIER, "4"), desk))
    rows = await kept(engine)
    assert [(r["record"]["TrangThaiHoSo"], r["times_seen"]) for r in rows] == [("4", 1)]
    # The same dossier waiting under two unknown identifiers is two records.
    await keep(engine, unmapped(record(DOSSIER), desk, identifier=KB))
    assert sorted(r["identifier"] for r in await kept(engine)) == [KB, LX]


def test_an_identifier_or_dossier_code_that_could_never_be_mapped_is_refused() -> None:
    principal = Principal(name="x", scopes=frozenset({Scope.dossiers_write}))
    with pytest.raises(ValueError):
        UnmappedRecord(dossier_code="A-1", identifier="9" * 65, record={}, source="push",
                       principal=principal)  # fmt: skip
    with pytest.raises(ValueError):
        UnmappedRecord(dossier_code="", identifier=LX, record={}, source="push",
                       principal=principal)  # fmt: skip


# --- operators' counts ------------------------------------------------------------------------


async def test_operators_see_counts_per_unknown_identifier_page_by_page(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    desk, headers = await sender(client)
    await keep(engine, unmapped(record(f"{LX}-260302-0001"), desk))
    await keep(engine, unmapped(record(f"{KB}-260302-0007"), desk, identifier=KB))
    await keep(engine, unmapped(record(f"{LX}-260302-0002"), desk))
    await keep(engine, unmapped(record(f"{LX}-260302-0001", "4"), desk))  # re-sent: still one
    rows = {(r["identifier"], r["dossier_code"]): r for r in await kept(engine)}
    lx_first = rows[(LX, f"{LX}-260302-0001")]["first_seen_at"]
    lx_last = rows[(LX, f"{LX}-260302-0001")]["last_seen_at"]
    kb = rows[(KB, f"{KB}-260302-0007")]

    def instant(value: str) -> datetime:
        return datetime.fromisoformat(value)

    response = await client.get("/v1/portal/unmapped", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [(i["identifier"], i["records"], i["held"], i["reasons"], i["example_dossier_code"])
            for i in body["items"]] == [
        (KB, 1, 0, [], f"{KB}-260302-0007"),
        (LX, 2, 0, [], f"{LX}-260302-0001"),  # the record seen last
    ]  # fmt: skip
    assert instant(body["items"][1]["first_seen_at"]) == lx_first
    assert instant(body["items"][1]["last_seen_at"]) == lx_last
    assert instant(body["items"][0]["first_seen_at"]) == kb["first_seen_at"]

    first = (await client.get("/v1/portal/unmapped", params={"limit": 1}, headers=ADMIN)).json()
    assert [i["identifier"] for i in first["items"]] == [KB]
    second = await client.get(
        "/v1/portal/unmapped", params={"limit": 1, "cursor": first["next"]}, headers=ADMIN
    )
    assert [i["identifier"] for i in second.json()["items"]] == [LX]
    assert second.json()["next"] is None
    bad = await client.get("/v1/portal/unmapped", params={"cursor": "WzFd"}, headers=ADMIN)
    assert bad.status_code == 400  # [1]: not the identifier this list's cursor holds

    # Any admin, a unit-bound one too, reads every identifier; other keys may not.
    _, bound_admin = await create_key(client, ["admin"], "H05", name="Sở Nội vụ Bắc Ninh")
    as_bound = await client.get("/v1/portal/unmapped", headers=bound_admin)
    assert as_bound.json() == body
    assert (await client.get("/v1/portal/unmapped", headers=headers)).status_code == 403
    assert (await client.get("/v1/portal/unmapped")).status_code == 401


# --- release -------------------------------------------------------------------------------------


async def test_mapping_the_identifier_releases_the_record_through_the_worker(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    desk, _ = await sender(client)
    await keep(engine, unmapped(record(DOSSIER), desk))
    response = await client.put(
        "/v1/units/H01.01",
        json={"name": "UBND phường Long Xuyên", "level": "commune", "parent_code": "H01",
              "identifier": LX},
        headers=ADMIN,
    )  # fmt: skip
    assert response.status_code == 200
    assert "release_unmapped" in {f.__name__ for f in JOBS}
    # Recorded with the change and handed to Redis; a real arq worker runs it.
    assert await outbox(engine) == []
    options = worker_options(settings, settings.database_url or "", settings.redis_url or "")
    options.pop("cron_jobs")
    worker = Worker(**options, burst=True, poll_delay=0.05)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)

    assert await kept(engine) == []
    async with engine.connect() as conn:
        owner = (await conn.execute(text("SELECT unit_code, key_id FROM dossier_owners "
                                         f"WHERE code = '{DOSSIER}'"))).one()  # fmt: skip
    assert (owner.unit_code, str(owner.key_id)) == ("H01.01", desk.key_id)
    await derive_dossiers(ctx(engine, settings))
    dossier = await get_dossier(client, DOSSIER, headers=ADMIN)
    assert (dossier["unit_code"], dossier["status"]) == ("H01.01", 2)


async def test_the_release_job_stores_every_record_in_chunks_and_is_idempotent(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    desk, _ = await sender(client)
    codes = [f"{LX}-260302-000{n}" for n in range(1, 6)]
    await keep(engine, *(unmapped(record(code), desk) for code in codes))
    assert await map_identifier(engine, "H01.01", LX) == [LX]
    assert await outbox(engine) == [("release_unmapped", [LX])]

    done = await release_unmapped(ctx(engine, settings, release_chunk=2), LX)
    assert done == {"taken": 5, "held": 0, "stored": 5}
    assert await kept(engine) == []
    async with engine.connect() as conn:
        owners = (await conn.execute(text("SELECT code, unit_code FROM dossier_owners "
                                          "ORDER BY code"))).all()  # fmt: skip
    assert [tuple(o) for o in owners] == [(code, "H01.01") for code in codes]
    # arq may run a job twice: the second run finds nothing to do.
    assert await release_unmapped(ctx(engine, settings), LX) == {"taken": 0, "held": 0}


async def test_a_release_outside_the_senders_subtree_is_held_with_the_reason(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    """A key of Bắc Ninh sent a record naming LX; LX turns out to be An Giang's commune: the
    release refuses what the key could not have stored itself, and says why."""
    bac_ninh, _ = await sender(client, "H05", name="Một cửa Bắc Ninh")
    await keep(engine, unmapped(record(DOSSIER), bac_ninh))
    await map_identifier(engine, "H01.01", LX)
    done = await release_unmapped(ctx(engine, settings), LX)
    assert (done["taken"], done["held"], done.get("stored", 0)) == (1, 1, 0)
    rows = await kept(engine)
    assert [(r["dossier_code"], r["reason"]) for r in rows] == [
        (DOSSIER, "outside this key's unit")
    ]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dossier_events"))).scalar() == 0
    listed = (await client.get("/v1/portal/unmapped", headers=ADMIN)).json()["items"]
    assert [(i["identifier"], i["records"], i["held"], i["reasons"]) for i in listed] == [
        (LX, 1, 1, ["outside this key's unit"])
    ]
    # Held records are not taken again by later releases.
    assert await release_unmapped(ctx(engine, settings), LX) == {"taken": 0, "held": 0}


async def test_a_revoked_keys_records_stay_quarantined_until_sent_again(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    desk, _ = await sender(client)
    await keep(engine, unmapped(record(DOSSIER), desk))
    revoked = await client.delete(f"/v1/api-keys/{desk.key_id}", headers=ADMIN)
    assert revoked.status_code == 200
    await map_identifier(engine, "H01.01", LX)
    done = await release_unmapped(ctx(engine, settings), LX)
    assert done == {"taken": 1, "held": 1}
    rows = await kept(engine)
    assert [(r["dossier_code"], r["reason"], r["times_seen"]) for r in rows] == [
        (DOSSIER, "key revoked", 1)
    ]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dossier_owners"))).scalar() == 0

    # The system sends it again with a new key (read just before the mapping committed, so
    # kept again): the kept record is replaced and waits again, and since its identifier is
    # mapped by now, its release is queued at once.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM outbox"))
    new_key, _ = await sender(client, name="Một cửa An Giang (khóa mới)")
    await keep(engine, unmapped(record(DOSSIER), new_key))
    assert [(r["reason"], r["times_seen"], str(r["key_id"])) for r in await kept(engine)] == [
        (None, 2, new_key.key_id)
    ]
    assert await outbox(engine) == [("release_unmapped", [LX])]
    assert await release_unmapped(ctx(engine, settings), LX) == {
        "taken": 1, "held": 0, "stored": 1
    }  # fmt: skip
    assert await kept(engine) == []


async def test_a_sync_sources_records_are_released_as_that_source(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    portal = Principal(name="portal:dvc-angiang", scopes=frozenset({Scope.dossiers_write}))
    await keep(engine, unmapped(record(DOSSIER), portal, source="dvc-angiang"))
    row = (await kept(engine))[0]
    assert (row["source"], row["key_id"], row["posted_by"]) == (
        "dvc-angiang", None, "portal:dvc-angiang"
    )  # fmt: skip
    await map_identifier(engine, "H01.01", LX)
    assert (await release_unmapped(ctx(engine, settings), LX))["stored"] == 1
    async with engine.connect() as conn:
        sources = (await conn.execute(text("SELECT DISTINCT source FROM dossier_events"))).all()
    assert [s[0] for s in sources] == ["sync"]


async def test_a_unit_created_with_the_unknown_token_as_its_code_releases_too(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    """Records name units by identifier or by chiso code: a MaHoSo prefix that is the code of
    a unit not created yet waits for that unit."""
    desk, _ = await sender(client)
    code = "H01.09-260302-0001"
    await keep(engine, unmapped(record(code), desk, identifier="H01.09"))
    assert await map_identifier(engine, "H01.09", None) == ["H01.09"]
    assert (await release_unmapped(ctx(engine, settings), "H01.09"))["stored"] == 1
    async with engine.connect() as conn:
        owner = (await conn.execute(text("SELECT unit_code FROM dossier_owners"))).scalar()
    assert owner == "H01.09"


async def test_only_a_mapping_with_waiting_records_queues_a_release_and_putting_again_retries(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    assert await map_identifier(engine, "H01.01", LX) == []
    assert await outbox(engine) == []
    desk, _ = await sender(client)
    # Kept while LX is already mapped (a record read just before the mapping committed):
    # the release is queued by the keeping itself.
    await keep(engine, unmapped(record(DOSSIER), desk))
    assert await outbox(engine) == [("release_unmapped", [LX])]
    # Putting the unit again, unchanged, queues it again: an operator's way to retry.
    assert await map_identifier(engine, "H01.01", LX) == [LX]
    assert await outbox(engine) == [("release_unmapped", [LX])] * 2


async def test_an_identifier_cleared_before_the_job_runs_leaves_the_records_waiting(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    desk, _ = await sender(client)
    await keep(engine, unmapped(record(DOSSIER), desk))
    await map_identifier(engine, "H01.01", LX)
    await map_identifier(engine, "H01.01", None)
    assert await release_unmapped(ctx(engine, settings), LX) == {"taken": 0, "held": 0}
    assert [(r["dossier_code"], r["reason"]) for r in await kept(engine)] == [(DOSSIER, None)]
