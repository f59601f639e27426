"""The overdue list as a file Excel opens right: CSV with a BOM, XLSX with the same cells,
Vietnamese headers (English with lang=en), local times, the JSON's columns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from app.core.exports import XLSX_TYPE
from tests.helpers import (
    ADMIN,
    create_key,
    event,
    post_events,
    province_with_communes,
    put_procedure,
    vn,
)
from tests.spreadsheets import csv_rows, same_cells, xlsx_rows

VI_HEADERS = [
    "Mã hồ sơ", "Mã đơn vị", "Tên đơn vị", "Mã thủ tục", "Thời điểm tiếp nhận",
    "Hạn giải quyết", "Số ngày làm việc quá hạn", "Đã có phiếu xin lỗi",
    "Hạn mới theo phiếu xin lỗi",
]  # fmt: skip
EN_HEADERS = [
    "Dossier code", "Unit code", "Unit name", "Procedure code", "Received at", "Due at",
    "Overdue by (working days)", "Apology letter issued", "New due time (apology letter)",
]  # fmt: skip
# The JSON fields of an overdue item, in order: one column each.
FIELDS = [
    "code", "unit_code", "unit_name", "procedure_code", "received_at", "due_at", "overdue_by",
    "apology_issued", "apology_new_due_at",
]  # fmt: skip
# At Tue 10 Mar 2026 12:00 (office hours 07:30–11:30, 13:00–17:00, 8 h a day):
# - H01.02-A (xã Mỹ Hòa Hưng) received Mon 2 Mar 08:00 with a stated due time of Thu 5 Mar
#   10:00: late Thu 10:00–11:30 and 13:00–17:00 (5.5 h) + Fri 8 h + Mon 8 h + Tue 07:30–11:30
#   (4 h) = 25.5 h = 3.1875 → 3.19 working days;
# - H01.01-B (the desk of Long Xuyên) received Mon 2 Mar 08:00, 3 working days: due Thu 5 Mar
#   17:00, late Fri + Mon + Tue morning = 20 h = 2.50; an apology letter set Thu 12 Mar 17:00.
# Most overdue first. Times in Vietnam's local time, ISO 8601 with +07:00.
ROWS = [
    ["H01.02-A", "H01.02", "UBND xã Mỹ Hòa Hưng", "P3", "2026-03-02T08:00:00+07:00",
     "2026-03-05T10:00:00+07:00", "3.19", "Không", ""],
    ["H01.01-B", "H01.01.MC", "Bộ phận Một cửa Long Xuyên", "P3", "2026-03-02T08:00:00+07:00",
     "2026-03-05T17:00:00+07:00", "2.50", "Có", "2026-03-12T17:00:00+07:00"],
]  # fmt: skip


@pytest.fixture
async def overdue(client: httpx.AsyncClient, clock: Callable[[datetime], None]) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    clock(vn("2026-03-10 12:00"))
    await post_events(client, [
        event("a1", "H01.02-A", 2, "2026-03-02 08:00", unit="H01.02",
              due_at="2026-03-05 10:00"),
        event("b1", "H01.01-B", 2, "2026-03-02 08:00", unit="H01.01.MC"),
        event("b2", "H01.01-B", 4, "2026-03-09 09:00", unit="H01.01.MC",
              apology_issued_at="2026-03-09 09:00", apology_new_due_at="2026-03-12 17:00"),
        event("c1", "H05.01-C", 2, "2026-03-02 08:00", unit="H05.01"),  # another province
    ])  # fmt: skip


async def test_the_csv_opens_in_excel_with_vietnamese_text_and_local_times(
    client: httpx.AsyncClient, overdue: None
) -> None:
    response = await client.get("/v1/units/H01/overdue", params={"format": "csv"}, headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="ho-so-qua-han-H01-2026-03-10.csv"; '
        "filename*=UTF-8''ho-so-qua-han-H01-2026-03-10.csv"
    )
    rows = csv_rows(response.content)
    assert rows == [VI_HEADERS, *ROWS]
    assert rows[1][2] == "UBND xã Mỹ Hòa Hưng"
    assert response.content.count(b"\r\n") == 3  # CRLF rows, as Excel writes them


async def test_the_columns_are_the_jsons(client: httpx.AsyncClient, overdue: None) -> None:
    as_json = (await client.get("/v1/units/H01/overdue", headers=ADMIN)).json()
    assert [list(item) for item in as_json["items"]] == [FIELDS, FIELDS]
    # The same instants as the JSON's, in local time.
    assert [datetime.fromisoformat(i["due_at"]) for i in as_json["items"]] == [
        vn("2026-03-05 10:00"), vn("2026-03-05 17:00"),
    ]  # fmt: skip
    english = await client.get(
        "/v1/units/H01/overdue", params={"format": "csv", "lang": "en"}, headers=ADMIN
    )
    rows = csv_rows(english.content)
    assert rows[0] == EN_HEADERS
    assert [row[7] for row in rows[1:]] == ["No", "Yes"]
    assert english.headers["content-disposition"].startswith(
        'attachment; filename="overdue-H01-2026-03-10.csv"'
    )
    # By Accept, without format=: the same file.
    by_accept = await client.get("/v1/units/H01/overdue", headers={**ADMIN, "Accept": "text/csv"})
    assert csv_rows(by_accept.content) == [VI_HEADERS, *ROWS]


async def test_the_xlsx_holds_the_same_cells(client: httpx.AsyncClient, overdue: None) -> None:
    response = await client.get("/v1/units/H01/overdue", params={"format": "xlsx"}, headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX_TYPE
    assert response.headers["content-disposition"].endswith(
        "filename*=UTF-8''ho-so-qua-han-H01-2026-03-10.xlsx"
    )
    name, cells = xlsx_rows(response.content)
    assert name == "Hồ sơ quá hạn H01"
    assert cells[0] == VI_HEADERS
    # Dates are date-time cells shown as the CSV's text; 3.19 and 2.50 are numbers.
    assert cells[1][5] == "2026-03-05T10:00:00+07:00"
    assert cells[2][6] == "2.50"
    assert same_cells([VI_HEADERS, *ROWS], cells)
    english = await client.get(
        "/v1/units/H01/overdue", params={"lang": "en"}, headers={**ADMIN, "Accept": XLSX_TYPE}
    )
    name, cells = xlsx_rows(english.content)
    assert (name, cells[0], cells[1][7]) == ("Overdue dossiers H01", EN_HEADERS, "No")


async def test_an_empty_list_still_has_its_headers(
    client: httpx.AsyncClient, overdue: None
) -> None:
    response = await client.get(
        "/v1/units/H01.02.X/overdue", params={"format": "csv"}, headers=ADMIN
    )
    assert response.status_code == 404  # an unknown unit, as for the JSON
    response = await client.get("/v1/units/H05/overdue", params={"format": "csv"}, headers=ADMIN)
    assert [row[0] for row in csv_rows(response.content)] == ["Mã hồ sơ", "H05.01-C"]
    await post_events(client, [event("c2", "H05.01-C", 9, "2026-03-10 09:00", unit="H05.01")])
    response = await client.get("/v1/units/H05/overdue", params={"format": "xlsx"}, headers=ADMIN)
    assert xlsx_rows(response.content)[1] == [VI_HEADERS]


async def test_the_file_needs_the_same_key_as_the_list(
    client: httpx.AsyncClient, overdue: None
) -> None:
    _, h05 = await create_key(client, ["dossiers:read"], "H05")
    _, h01 = await create_key(client, ["dossiers:read"], "H01")
    url = "/v1/units/H01/overdue"
    assert (await client.get(url, params={"format": "csv"})).status_code == 401
    assert (await client.get(url, params={"format": "xlsx"}, headers=h05)).status_code == 403
    mine = await client.get(url, params={"format": "csv"}, headers=h01)
    assert csv_rows(mine.content) == [VI_HEADERS, *ROWS]
    for bad in ({"format": "pdf"}, {"format": "csv", "lang": "fr"}):
        refused = await client.get(url, params=bad, headers=h01)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
