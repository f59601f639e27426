"""The shipped divisions: 34 provinces under their portal H codes and the 3,321 communes of the
statistics office's list, loaded idempotently, never deleted, changes dated."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import unicodedata
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from vietnam_provinces import Province, VietNamDivisionType, Ward

from app.cli import load_reference_data, load_simulator_units
from app.core.database import create_sessionmaker
from app.core.errors import Conflict, Unprocessable
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from app.portal.jobs import release_unmapped
from app.scores.jobs import refresh_scores
from app.units.reference import (
    Commune,
    Divisions,
    build_divisions,
    load_communes,
    province_gso_codes,
    shipped_divisions,
)
from app.units.service import PROVINCES_CSV, load_units_csv
from tests.helpers import ADMIN, create_key, get_dossier, post_events, put_procedure, put_unit, vn
from tests.portal.test_unmapped import ctx, keep, kept, outbox, record, sender, unmapped
from tests.scores.test_rankings import dossiers
from tests.test_settings_cli import chiso

# The 13 special zones (đặc khu) of the 2025 reorganisation and the province each lies in, by
# the portal's codes: a check of the province matching that needs no name matching at all.
SPECIAL_ZONES = {
    "Đặc khu Vân Đồn": "H49", "Đặc khu Cô Tô": "H49",  # Quảng Ninh
    "Đặc khu Cát Hải": "H24", "Đặc khu Bạch Long Vĩ": "H24",  # Hải Phòng
    "Đặc khu Phú Quốc": "H01", "Đặc khu Thổ Châu": "H01", "Đặc khu Kiên Hải": "H01",  # An Giang
    "Đặc khu Côn Đảo": "H29",  # Hồ Chí Minh City
    "Đặc khu Lý Sơn": "H48",  # Quảng Ngãi
    "Đặc khu Trường Sa": "H32",  # Khánh Hòa
    "Đặc khu Hoàng Sa": "H17",  # Đà Nẵng
    "Đặc khu Phú Quý": "H36",  # Lâm Đồng
    "Đặc khu Cồn Cỏ": "H50",  # Quảng Trị
}  # fmt: skip


def folded(name: str) -> str:
    """A province's name without "UBND", "tỉnh" / "thành phố", accents or case: the portal's
    "UBND Thành phố Đồng Nai" and the list's "Đồng Nai" are one province."""
    name = name.strip()
    for prefix in ("UBND ", "tỉnh ", "thành phố "):
        if name.casefold().startswith(prefix.casefold()):
            name = name[len(prefix) :]
    bare = "".join(c for c in unicodedata.normalize("NFD", name) if unicodedata.category(c) != "Mn")
    return bare.replace("đ", "d").replace("Đ", "D").casefold()


def portal_to_gso_by_name() -> dict[str, str]:
    """H code → statistics-office province code, matched by name only (the test's own work)."""
    portal = list(csv.DictReader(io.StringIO(PROVINCES_CSV.read_text(encoding="utf-8-sig"))))
    listed = {folded(p.name): f"{int(p.code):02d}" for p in Province.iter_all()}
    assert len(listed) == 34  # no two provinces fold to one name
    return {row["code"]: listed[folded(row["name"])] for row in portal}


async def load(engine: AsyncEngine, **kwargs: Any) -> str:
    async with create_sessionmaker(engine)() as session:
        summary = await load_reference_data(session, **kwargs)
        await session.commit()
    return summary


async def scalar_rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def audit_of(client: httpx.AsyncClient, target: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"target": target}, headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- the list and the province matching ----------------------------------------------------


def test_the_list_has_the_34_provinces_and_3321_communes_of_2025() -> None:
    # 3,321 communes: 2,621 xã, 687 phường, 13 đặc khu (the reorganisation's published count).
    assert len(list(Province.iter_all())) == 34
    types = Counter(w.division_type for w in Ward.iter_all())
    assert types == {
        VietNamDivisionType.XA: 2621,
        VietNamDivisionType.PHUONG: 687,
        VietNamDivisionType.DAC_KHU: 13,
    }
    divisions = shipped_divisions()
    assert len(divisions.communes) == 3321
    assert len({c.code for c in divisions.communes}) == 3321


def test_every_portal_province_matches_its_statistics_office_province_by_name() -> None:
    by_name = portal_to_gso_by_name()
    assert len(by_name) == 34
    assert len(set(by_name.values())) == 34  # one to one
    shipped = {h: gso for gso, h in province_gso_codes().items()}
    assert shipped == by_name
    # A few by hand: An Giang took Kiên Giang's code (91) in the merger; the portal calls
    # Đồng Nai a city, the list a province.
    assert (by_name["H01"], by_name["H26"], by_name["H29"], by_name["H19"]) == (
        "91", "01", "79", "75",
    )  # fmt: skip


def test_a_province_without_an_h_code_is_refused() -> None:
    with pytest.raises(Unprocessable, match="no portal H code for province"):
        build_divisions(
            source="a future list", data_date=date(2027, 1, 1), provinces={"01": "H26"},
            package_provinces=[("01", "Thành phố Hà Nội"), ("99", "Tỉnh Mới")],
            wards=[(4, "Phường Ba Đình", "01")],
        )  # fmt: skip


# --- loading -----------------------------------------------------------------------------------


async def test_reference_loads_every_commune_under_its_province(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    summary = await load(engine)
    assert "3321 communes from vietnam-provinces 2025.10.1 (data of 2025-10-18): 3321 created" in (
        summary
    )
    levels = await scalar_rows(engine, "SELECT level, count(*) FROM units GROUP BY 1 ORDER BY 1")
    assert levels == [("commune", 3321), ("province", 34)]

    # Each province holds exactly the communes the list gives its namesake.
    by_name = portal_to_gso_by_name()
    expected = Counter(
        h for w in Ward.iter_all() for h, gso in by_name.items() if gso == f"{w.province_code:02d}"
    )
    stored = await scalar_rows(
        engine, "SELECT parent_code, count(*) FROM units WHERE level = 'commune' GROUP BY 1"
    )
    assert dict(stored) == dict(expected)
    assert (expected["H26"], expected["H29"], expected["H57"]) == (126, 168, 40)

    zones = await scalar_rows(
        engine, "SELECT name, parent_code FROM units WHERE name LIKE 'Đặc khu %'"
    )
    assert dict(zones) == SPECIAL_ZONES

    ba_dinh = (await client.get("/v1/units/H26.00004")).json()
    assert ba_dinh == {
        "code": "H26.00004", "name": "Phường Ba Đình", "level": "commune", "parent_code": "H26",
        "valid_from": "2025-07-01", "valid_to": None, "successor_code": None, "identifier": None,
        "parents": [{"code": "H26", "name": "UBND Thành phố Hà Nội", "level": "province"}],
        "children_count": 0,
    }  # fmt: skip
    # The list writes "Xã  Bắc Đông Quan" (two spaces): stored as the name reads.
    assert (await client.get("/v1/units/H31.12745")).json()["name"] == "Xã Bắc Đông Quan"
    assert (await client.get("/v1/units/H29.26740")).json()["name"] == "Phường Sài Gòn"


async def test_loading_again_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load(engine)
    before = await scalar_rows(engine, "SELECT code, updated_at FROM units ORDER BY code")
    again = await load(engine)
    assert "0 created, 0 renamed, 0 closed" in again
    assert await scalar_rows(engine, "SELECT code, updated_at FROM units ORDER BY code") == before
    # The first load is recorded once, as one entry (not one per commune).
    audit = await scalar_rows(engine, "SELECT action, target FROM audit_log")
    assert audit == [("unit.reference.load", "vietnam-provinces 2025.10.1 (data of 2025-10-18)")]


async def test_every_start_of_chiso_run_after_the_first_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """`chiso run` loads the reference data, then the portal simulator's units (whose communes
    are shipped ones, given their identifiers): neither undoes the other."""
    for _ in range(2):  # two starts
        async with create_sessionmaker(engine)() as session:
            reference = await load_reference_data(session)
            simulator = await load_simulator_units(session)
            await session.commit()
    assert "0 created, 0 renamed, 0 closed" in reference
    assert simulator.startswith("simulator units: 0 changed")
    long_xuyen = (await client.get("/v1/units/H01.30307")).json()
    assert (long_xuyen["name"], long_xuyen["identifier"], long_xuyen["valid_from"]) == (
        "Phường Long Xuyên", "000.01.31.H01", "2025-07-01",
    )  # fmt: skip
    communes = await scalar_rows(
        engine, "SELECT count(*) FROM units WHERE level = 'commune' AND parent_code = 'H01'"
    )
    assert communes == [(102,)]  # An Giang's, the simulator's among them, none twice


async def test_loading_takes_a_few_statements_whatever_the_number_of_communes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    for _ in range(2):  # a first load, then one that finds nothing to do
        async with create_sessionmaker(engine)() as session:
            await load_units_csv(session, PROVINCES_CSV.read_text(encoding="utf-8-sig"))
            event.listen(engine.sync_engine, "before_cursor_execute", count)
            try:
                loaded = await load_communes(session)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", count)
            await session.commit()
        assert 0 < len(statements) <= 12, statements
        statements.clear()
    assert (len(loaded.created), len(loaded.changed), len(loaded.closed)) == (0, 0, 0)


async def test_a_communes_desk_gets_a_key_right_after_chiso_reference(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    db, redis = settings.database_url or "", settings.redis_url or ""
    loaded = await asyncio.to_thread(chiso, db, redis, "reference")
    assert loaded.returncode == 0, loaded.stderr
    assert "3321 created" in loaded.stdout
    created = await asyncio.to_thread(
        chiso, db, redis, "keys", "create", "--name", "Một cửa phường Thuận Hóa",
        "--scope", "dossiers:write", "--scope", "dossiers:read", "--unit", "H57.19786",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    lines = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    desk = {"Authorization": f"Bearer {lines['key'].strip()}"}
    # The desk records a dossier of a shipped procedure (birth registration) at its commune...
    stored = await post_events(
        client,
        [{"event_id": "e1", "dossier_code": "H57.19786-260310-0001", "unit_code": "H57.19786",
          "procedure_code": "1.001193", "status": 2, "channel": 1,
          "occurred_at": vn("2026-03-10 08:00").isoformat()}],
        headers=desk,
    )  # fmt: skip
    assert stored["stored"] == 1, stored
    # ...and not at its neighbour's.
    refused = await client.post(
        "/v1/dossier-events/batch",
        json={"events": [{"event_id": "e2", "dossier_code": "H57.19768-260310-0001",
                          "unit_code": "H57.19768", "procedure_code": "1.001193", "status": 2,
                          "channel": 1, "occurred_at": vn("2026-03-10 08:00").isoformat()}]},
        headers=desk,
    )  # fmt: skip
    assert refused.json()["rejected"] == 1


def newer(divisions: Divisions, **changes: Any) -> Divisions:
    """The shipped list with the changes a later release might bring."""
    communes = {c.code: c for c in divisions.communes}
    for code, name in changes.get("renamed", {}).items():
        communes[code] = dataclasses.replace(communes[code], name=name)
    for code in changes.get("dropped", []):
        del communes[code]
    for code, province in changes.get("moved", {}).items():
        old = communes.pop(code)
        new_code = f"{province}.{old.gso_code}"
        communes[new_code] = dataclasses.replace(old, code=new_code, province_code=province)
    for commune in changes.get("added", []):
        communes[commune.code] = commune
    return dataclasses.replace(
        divisions,
        source="vietnam-provinces 2026.7.1 (data of 2026-07-05)",
        data_date=date(2026, 7, 5),
        communes=tuple(communes[c] for c in sorted(communes)),
    )


async def test_a_newer_list_renames_closes_moves_and_adds_without_losing_keys_or_history(
    client: httpx.AsyncClient, engine: AsyncEngine, clock: Callable[[datetime], None]
) -> None:
    await load(engine)
    await put_procedure(client, "P3", 3, "working_days")
    _, desk = await create_key(client, ["dossiers:write", "dossiers:read"], "H57.19786")
    await post_events(client, dossiers("03", "H57.19768"))  # history at a commune to be dropped
    later = newer(
        shipped_divisions(),
        renamed={"H57.19786": "Phường Thuận Hóa Mới"},
        dropped=["H57.19768"],
        moved={"H57.19777": "H17"},  # to Đà Nẵng: a new unit, the old one's successor
        added=[Commune("H57.99999", "Xã Mới Lập", "H57", "99999")],
    )
    async with create_sessionmaker(engine)() as session:
        loaded = await load_communes(session, later, effective=date(2026, 7, 1))
        await session.commit()
    assert (loaded.created, loaded.changed, loaded.closed) == (
        ["H17.19777", "H57.99999"], ["H57.19786"], ["H57.19768", "H57.19777"],
    )  # fmt: skip

    rows = await scalar_rows(
        engine,
        "SELECT code, name, parent_code, valid_from, valid_to, successor_code FROM units "
        "WHERE code IN ('H57.19786', 'H57.19768', 'H57.19777', 'H17.19777', 'H57.99999') "
        "ORDER BY code",
    )
    assert [tuple(r) for r in rows] == [
        ("H17.19777", "Phường Vỹ Dạ", "H17", date(2026, 7, 1), None, None),
        ("H57.19768", "Phường Phú Xuân", "H57", date(2025, 7, 1), date(2026, 6, 30), None),
        ("H57.19777", "Phường Vỹ Dạ", "H57", date(2025, 7, 1), date(2026, 6, 30), "H17.19777"),
        ("H57.19786", "Phường Thuận Hóa Mới", "H57", date(2025, 7, 1), None, None),
        ("H57.99999", "Xã Mới Lập", "H57", date(2026, 7, 1), None, None),
    ]
    # The renamed commune's key still works; the dropped commune's dossiers are still there.
    assert (await client.get("/v1/dossiers", headers=desk)).status_code == 200
    kept = await client.get("/v1/dossiers/H57.19768-202603-0", headers=ADMIN)
    assert kept.json()["unit_code"] == "H57.19768"
    # Units valid on a day: before and after the change.
    for day, present, absent in (
        ("2026-06-30", "H57.19768", "H57.99999"),
        ("2026-07-01", "H57.99999", "H57.19768"),
    ):
        listed = await client.get(
            "/v1/units",
            params={"level": "commune", "parent": "H57", "valid_at": day, "limit": 100},
        )
        codes = {u["code"] for u in listed.json()["items"]}
        assert present in codes and absent not in codes, day
    # What changed, dated, in the audit log.
    history = await audit_of(client, "H57.19786")
    assert [(e["action"], e["before"]["name"], e["after"]["name"], e["after"]["effective"])
            for e in history] == [
        ("unit.reference.change", "Phường Thuận Hóa", "Phường Thuận Hóa Mới", "2026-07-01"),
    ]  # fmt: skip
    closed = await audit_of(client, "H57.19777")
    assert [(e["action"], e["after"]["valid_to"], e["after"]["successor_code"])
            for e in closed] == [("unit.reference.close", "2026-06-30", "H17.19777")]  # fmt: skip

    # The same list again: nothing more.
    async with create_sessionmaker(engine)() as session:
        again = await load_communes(session, later, effective=date(2026, 7, 1))
        await session.commit()
    assert (again.created, again.changed, again.closed) == ([], [], [])


async def test_a_listed_commune_an_admin_closed_stays_closed(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load(engine)
    body = (await client.get("/v1/units/H57.19768")).json()
    closed = {k: body[k] for k in ("name", "level", "parent_code", "valid_from")}
    response = await client.put(
        "/v1/units/H57.19768", json={**closed, "valid_to": "2026-03-31"}, headers=ADMIN
    )
    assert response.status_code == 200
    summary = await load(engine)
    assert "1 listed but closed here, left closed (H57.19768)" in summary
    assert (await client.get("/v1/units/H57.19768")).json()["valid_to"] == "2026-03-31"


async def test_portal_records_waiting_for_a_communes_code_are_released_when_it_ships(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """A one-stop system posted a record prefixed with a commune's code before chiso knew the
    commune: the load that creates it queues the record's release, which stores the dossier."""
    await put_unit(client, "H57", "province", name="UBND Thành phố Huế")
    await put_procedure(client, "P5", 5, "working_days")
    desk, _ = await sender(client, "H57", name="Một cửa Huế")
    code = "H57.19786-260302-0001"
    await keep(engine, unmapped(record(code), desk, identifier="H57.19786"))
    async with create_sessionmaker(engine)() as session:
        summary = await load_reference_data(session)
        await session.commit()
    assert "portal records waiting for 1 of them are released" in summary
    assert await outbox(engine) == [("release_unmapped", ["H57.19786"])]
    await release_unmapped(ctx(engine, settings), "H57.19786")
    await derive_dossiers(ctx(engine, settings))
    dossier = await get_dossier(client, code)
    assert (dossier["unit_code"], dossier["procedure_code"]) == ("H57.19786", "P5")
    assert await kept(engine) == []


async def test_a_communes_code_held_as_another_units_identifier_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await put_unit(client, "H57", "province", name="UBND Thành phố Huế")
    await put_unit(client, "H57.STP", "department", "H57", identifier="H57.19786")
    with pytest.raises(Conflict, match=r"Identifier 'H57.19786' of unit H57.STP"):
        await load(engine)
    levels = await scalar_rows(engine, "SELECT level, count(*) FROM units GROUP BY 1 ORDER BY 1")
    assert levels == [("department", 1), ("province", 1)]  # nothing stored


# --- lists and rankings with every commune -----------------------------------------------------


async def test_a_provinces_communes_page_through_the_units_list(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load(engine)
    first = (
        await client.get("/v1/units", params={"level": "commune", "parent": "H57", "limit": 25})
    ).json()
    assert len(first["items"]) == 25 and first["next"]
    second = (
        await client.get(
            "/v1/units",
            params={"level": "commune", "parent": "H57", "limit": 25, "cursor": first["next"]},
        )
    ).json()
    assert len(second["items"]) == 15 and second["next"] is None
    codes = [u["code"] for u in first["items"] + second["items"]]
    assert codes == sorted(codes) and len(set(codes)) == 40
    assert {u["parent_code"] for u in first["items"] + second["items"]} == {"H57"}
    provinces = (await client.get("/v1/units", params={"level": "province", "limit": 500})).json()
    assert len(provinces["items"]) == 34


async def test_communes_are_ranked_among_their_provinces_communes(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    now = vn("2026-04-10 09:00")
    clock(now)
    await load(engine)
    await put_procedure(client, "P3", 3, "working_days")
    # Only TDGQ has data: Phú Xuân 1/1 on time (20), Vỹ Dạ 1/2 (10) in Huế; Long Xuyên 1/1
    # (20) in An Giang.
    await post_events(client, [
        *dossiers("03", "H57.19768"), *dossiers("03", "H57.19777", late=1),
        *dossiers("03", "H01.30307"),
    ])  # fmt: skip
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: now})  # fmt: skip
    hue = (await client.get("/v1/rankings", params={
        "level": "commune", "period": "2026-03", "parent": "H57"})).json()  # fmt: skip
    assert hue["ranked"] == 2
    assert [(i["unit_code"], i["rank"], i["total"]) for i in hue["items"][:3]] == [
        ("H57.19768", 1, 20.0), ("H57.19777", 2, 10.0), ("H57.19786", None, None),
    ]  # fmt: skip
    # Every commune of Huế is listed (those without data unranked, after), none from elsewhere.
    assert len(hue["items"]) == 40
    assert all(i["unit_code"].startswith("H57.") for i in hue["items"])
    national = (await client.get("/v1/rankings", params={
        "level": "commune", "period": "2026-03"})).json()  # fmt: skip
    assert [(i["unit_code"], i["rank"]) for i in national["items"][:3]] == [
        ("H01.30307", 1), ("H57.19768", 1), ("H57.19777", 3),
    ]  # fmt: skip
    assert (national["ranked"], len(national["items"])) == (3, 3321)
