"""Due times, pauses and timeliness as the index counts them, worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from tests.helpers import event, get_dossier, instant, post_events, put_procedure, put_unit, vn

CODE = "H01.01-260101-0001"


@pytest.fixture
async def units(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")


async def received(
    client: httpx.AsyncClient, limit: float, unit: str, at: str, **extra: str
) -> dict[str, object]:
    await put_procedure(client, "P", limit, unit)
    await post_events(client, [event("r", CODE, 2, at, procedure="P", **extra)])
    return await get_dossier(client, CODE)


@pytest.mark.parametrize(
    ("limit", "unit", "received_at", "due"),
    [
        # Thu 12 Feb 2026 + 3 working days: Fri 13 (1), Tết 14–22 Feb off, Mon 23 (2), Tue 24 (3).
        (3, "working_days", "2026-02-12 10:00", "2026-02-24 17:00"),
        # Wed 29 Apr + 2: Thu 30 Apr and Fri 1 May are holidays, Mon 4 May (1), Tue 5 May (2).
        (2, "working_days", "2026-04-29 09:00", "2026-05-05 17:00"),
        # Wed 31 Dec 2025 + 2: 1 Jan holiday, Fri 2 Jan off by dispatch 12729/VPCP-KGVX,
        # Mon 5 Jan (1), Tue 6 Jan (2).
        (2, "working_days", "2025-12-31 14:00", "2026-01-06 17:00"),
        # Thu 8 Jan 2026 + 2: Fri 9 Jan (1), Sat 10 Jan is a working day by the same swap (2).
        (2, "working_days", "2026-01-08 10:00", "2026-01-10 17:00"),
        # 0.5 day = 4 working hours from receipt: Mon 9 Mar 14:00–17:00 (3 h), Tue 07:30 + 1 h.
        (0.5, "working_days", "2026-03-09 14:00", "2026-03-10 08:30"),
        # 4 working hours from Fri 6 Mar 15:00: 2 h on Friday, Mon 9 Mar 07:30 + 2 h.
        (4, "working_hours", "2026-03-06 15:00", "2026-03-09 09:30"),
        # 30 calendar days from Mon 2 Mar: Wed 1 Apr, a working day, at close of office.
        (30, "calendar_days", "2026-03-02 09:00", "2026-04-01 17:00"),
    ],
)
async def test_due_time_from_the_procedure_limit(
    client: httpx.AsyncClient, units: None, limit: float, unit: str, received_at: str, due: str
) -> None:
    dossier = await received(client, limit, unit, received_at)
    assert instant(dossier["due_at"]) == vn(due)  # type: ignore[arg-type]
    assert instant(dossier["received_at"]) == vn(received_at)  # type: ignore[arg-type]


async def test_stated_appointment_wins_over_the_limit(
    client: httpx.AsyncClient, units: None
) -> None:
    dossier = await received(client, 3, "working_days", "2026-03-02 08:00",
                             due_at="2026-03-04 10:00")  # fmt: skip
    assert instant(dossier["due_at"]) == vn("2026-03-04 10:00")  # type: ignore[arg-type]


async def test_supplement_pause_moves_the_due_time_by_the_paused_working_time(
    client: httpx.AsyncClient, units: None
) -> None:
    await put_procedure(client, "P5", 5, "working_days")
    await post_events(client, [
        # Received Mon 2 Mar 08:00: five working days → due Mon 9 Mar 17:00.
        event("1", CODE, 2, "2026-03-02 08:00", procedure="P5"),
        # Paused Wed 4 Mar 10:00 → Thu 5 Mar 15:00:
        # Wed 10:00–11:30 (1.5 h) + 13:00–17:00 (4 h) + Thu 07:30–11:30 (4 h) + 13:00–15:00 (2 h)
        # = 11.5 working hours.
        event("2", CODE, 5, "2026-03-04 10:00", procedure="P5"),
        event("3", CODE, 4, "2026-03-05 15:00", procedure="P5",
              supplement_supplied_at="2026-03-05 15:00"),
    ])  # fmt: skip
    dossier = await get_dossier(client, CODE)
    # Mon 9 Mar 17:00 + 11.5 h: Tue 10 Mar whole day (8 h), then Wed 11 Mar 07:30 + 3.5 h.
    assert instant(dossier["due_at"]) == vn("2026-03-11 11:00")  # type: ignore[arg-type]
    assert dossier["paused_for_hours"] == "11.50"
    assert dossier["supplement_requests"] == 1
    [pause] = dossier["pauses"]
    assert pause["kind"] == "supplement"
    assert instant(pause["started_at"]) == vn("2026-03-04 10:00")
    assert instant(pause["ended_at"]) == vn("2026-03-05 15:00")


async def test_new_appointment_given_with_the_supplement_replaces_the_due_time(
    client: httpx.AsyncClient, units: None
) -> None:
    await put_procedure(client, "P5", 5, "working_days")
    await post_events(client, [
        event("1", CODE, 2, "2026-03-02 08:00", procedure="P5"),
        event("2", CODE, 5, "2026-03-04 10:00", procedure="P5"),
        event("3", CODE, 4, "2026-03-05 15:00", procedure="P5",
              supplement_supplied_at="2026-03-05 15:00",
              supplement_new_due_at="2026-03-13 16:00"),
    ])  # fmt: skip
    dossier = await get_dossier(client, CODE)
    assert instant(dossier["due_at"]) == vn("2026-03-13 16:00")  # type: ignore[arg-type]


async def test_two_supplement_requests_make_the_dossier_overdue(
    client: httpx.AsyncClient, units: None, clock: Callable[[datetime], None]
) -> None:
    await put_procedure(client, "P20", 20, "working_days")
    clock(vn("2026-03-10 12:00"))  # long before the 20-day deadline
    one = [
        event("a1", "H01.01-A", 2, "2026-03-02 08:00", procedure="P20"),
        event("a2", "H01.01-A", 5, "2026-03-03 08:00", procedure="P20"),
        event("a3", "H01.01-A", 4, "2026-03-04 08:00", procedure="P20"),
    ]
    two = [
        event("b1", "H01.01-B", 2, "2026-03-02 08:00", procedure="P20"),
        event("b2", "H01.01-B", 5, "2026-03-03 08:00", procedure="P20"),
        event("b3", "H01.01-B", 4, "2026-03-04 08:00", procedure="P20"),
        event("b4", "H01.01-B", 5, "2026-03-05 08:00", procedure="P20"),
        event("b5", "H01.01-B", 4, "2026-03-06 08:00", procedure="P20"),
    ]
    await post_events(client, one + two)
    a = await get_dossier(client, "H01.01-A")
    b = await get_dossier(client, "H01.01-B")
    assert (a["timeliness"], a["overdue_by"]) == ("in_time", None)
    assert (b["timeliness"], b["overdue_by"]) == ("overdue", "0.00")
    # And when it finishes well before its due time, it still counts as late.
    await post_events(client, [event("b6", "H01.01-B", 9, "2026-03-09 08:00", procedure="P20")])
    assert (await get_dossier(client, "H01.01-B"))["timeliness"] == "late"


async def test_pending_supplement_is_judged_at_the_request_time(
    client: httpx.AsyncClient, units: None, clock: Callable[[datetime], None]
) -> None:
    await put_procedure(client, "P3", 3, "working_days")
    # Received Mon 2 Mar: due Thu 5 Mar 17:00. Supplement asked Wed 4 Mar, never supplied.
    await post_events(client, [
        event("1", CODE, 2, "2026-03-02 08:00", procedure="P3"),
        event("2", CODE, 5, "2026-03-04 09:00", procedure="P3"),
    ])  # fmt: skip
    clock(vn("2026-04-30 12:00"))  # weeks later: the clock stopped on 4 March
    dossier = await get_dossier(client, CODE)
    assert dossier["timeliness"] == "in_time"
    assert dossier["pauses"][0]["ended_at"] is None


async def test_overdue_by_counts_working_days(
    client: httpx.AsyncClient, units: None, clock: Callable[[datetime], None]
) -> None:
    await put_procedure(client, "P3", 3, "working_days")
    # Due Thu 5 Mar 17:00. At Tue 10 Mar 11:30: Fri 6 (8 h) + Mon 9 (8 h) + Tue 07:30–11:30
    # (4 h) = 20 h = 2.5 working days.
    await post_events(client, [event("1", CODE, 2, "2026-03-02 08:00", procedure="P3")])
    clock(vn("2026-03-10 11:30"))
    dossier = await get_dossier(client, CODE)
    assert (dossier["timeliness"], dossier["overdue_by"]) == ("overdue", "2.50")


async def test_finished_dossiers_are_early_on_time_or_late(
    client: httpx.AsyncClient, units: None
) -> None:
    await put_procedure(client, "P3", 3, "working_days")  # received Mon 2 Mar → due Thu 5 Mar
    cases = {"E": "2026-03-04 10:00", "T": "2026-03-05 16:59", "L": "2026-03-06 08:00"}
    for code, finished in cases.items():
        await post_events(client, [
            event(f"{code}1", code, 2, "2026-03-02 08:00", procedure="P3"),
            event(f"{code}2", code, 9, finished, procedure="P3"),
        ])  # fmt: skip
    outcomes = {c: (await get_dossier(client, c))["timeliness"] for c in cases}
    assert outcomes == {"E": "early", "T": "on_time", "L": "late"}
    late = await get_dossier(client, "L")
    # Thu 5 Mar 17:00 → Fri 6 Mar 08:00: 0.5 h of office time = 0.0625 → 0.06 days.
    assert late["overdue_by"] == "0.06"


async def test_finished_beats_returned_for_the_end_time(
    client: httpx.AsyncClient, units: None
) -> None:
    await put_procedure(client, "P3", 3, "working_days")
    await post_events(client, [
        event("1", CODE, 2, "2026-03-02 08:00", procedure="P3"),
        event("2", CODE, 10, "2026-03-06 08:00", procedure="P3"),  # returned after due...
        event("3", CODE, 9, "2026-03-05 10:00", procedure="P3"),  # ...but finished in time
    ])  # fmt: skip
    dossier = await get_dossier(client, CODE)
    assert instant(dossier["finished_at"]) == vn("2026-03-05 10:00")  # type: ignore[arg-type]
    assert dossier["timeliness"] == "on_time"


async def test_withdrawal_counts_only_after_acceptance(
    client: httpx.AsyncClient, units: None
) -> None:
    await put_procedure(client, "P3", 3, "working_days")
    await post_events(client, [
        event("a1", "W-BEFORE", 1, "2026-03-02 08:00", procedure="P3", channel=2),
        event("a2", "W-BEFORE", 7, "2026-03-02 09:00", procedure="P3", channel=2),
        event("b1", "W-AFTER", 2, "2026-03-02 08:00", procedure="P3"),
        event("b2", "W-AFTER", 7, "2026-03-03 09:00", procedure="P3"),
    ])  # fmt: skip
    before = await get_dossier(client, "W-BEFORE")
    after = await get_dossier(client, "W-AFTER")
    assert (before["counted"], before["timeliness"]) == (False, None)
    assert (after["counted"], after["timeliness"]) == (True, "early")
