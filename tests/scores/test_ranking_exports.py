"""Rankings as files: the JSON items' columns with Vietnamese headers (English with lang=en),
CSV with a BOM, XLSX with the same cells. Public, like the JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.exports import XLSX_TYPE, flatten
from app.core.settings import Settings
from app.scores.jobs import refresh_scores
from tests.helpers import post_events, put_procedure, put_unit
from tests.scores.test_rankings import FEBRUARY, MARCH, NOW, dossiers, submit, values
from tests.spreadsheets import csv_rows, same_cells, xlsx_rows

NAMES = {
    "H01": "Thành phố Hồ Chí Minh", "H05": "Tỉnh Đắk Lắk", "H12": "Tỉnh Cà Mau",
    "H13": "Thành phố Cần Thơ", "H14": "Tỉnh Cao Bằng",
}  # fmt: skip
GROUPS = ["CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"]
# The headers this test expects for each JSON field of a ranking item (a field not listed is
# headed by its own name, as the export does).
VI = {
    "rank": "Hạng", "of": "Trong số", "unit_code": "Mã đơn vị", "name": "Tên đơn vị",
    "total": "Tổng điểm", "grade": "Xếp loại", "complete": "Đủ dữ liệu",
    "completeness": "Mức độ đầy đủ dữ liệu", "rank_change": "Thay đổi thứ hạng",
    "score_change": "Thay đổi điểm", "integrity_flags": "Cảnh báo dữ liệu đang mở",
    **{f"groups.{g}": g for g in GROUPS},
}  # fmt: skip
EN = {
    "rank": "Rank", "of": "Out of", "unit_code": "Unit code", "name": "Unit name",
    "total": "Total score", "grade": "Grade", "complete": "Complete data",
    "completeness": "Data completeness", "rank_change": "Rank change",
    "score_change": "Score change", "integrity_flags": "Open data-integrity flags",
    **{f"groups.{g}": g for g in GROUPS},
}  # fmt: skip
PARAMS = {"level": "province", "period": "2026-03"}


@pytest.fixture
async def ranked(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    """March as in tests/scores/test_rankings.py: H01 and H14 100, H05 97, H99 96, H12 and H13
    95 (ranks 1, 1, 3, 4, 5, 5); the provinces under their Vietnamese names."""
    clock(NOW)
    for code, name in NAMES.items():
        await put_unit(client, code, "province", name=name)
    await put_unit(client, "H99", "province", name="Tỉnh Hòa Bình", valid_from="2026-03-01")
    await put_procedure(client, "P3", 3, "working_days")
    await submit(client, values("2026-02", FEBRUARY) + values("2026-03", MARCH))
    events: list[dict[str, Any]] = []
    for unit in FEBRUARY:
        events += dossiers("02", unit)
    for unit in MARCH:
        tied = unit in ("H12", "H13")
        events += dossiers("03", unit, late=1 if tied else 0, on_time=3 if tied else 1)
    await post_events(client, events)
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip


def by_header(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """Each data row as {header: cell}, by unit code (the second language's too)."""
    head = rows[0]
    code = head.index("Mã đơn vị") if "Mã đơn vị" in head else head.index("Unit code")
    return {row[code]: dict(zip(head, row, strict=True)) for row in rows[1:]}


async def test_the_csv_has_the_jsons_columns_with_vietnamese_headers(
    client: httpx.AsyncClient, ranked: None
) -> None:
    ranking = (await client.get("/v1/rankings", params=PARAMS)).json()
    fields = list(flatten(ranking["items"][0]))
    assert {f"groups.{g}" for g in GROUPS} <= set(fields)
    response = await client.get("/v1/rankings", params={**PARAMS, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="xep-hang-province-ca-nuoc-2026-03.csv"; '
        "filename*=UTF-8''xep-hang-province-ca-nuoc-2026-03.csv"
    )
    rows = csv_rows(response.content)
    assert rows[0] == [VI.get(f, f) for f in fields]
    assert len(rows) == 1 + 6
    units = by_header(rows)
    # In rank order, names decoded exactly.
    assert [row[rows[0].index("Tên đơn vị")] for row in rows[1:]] == [
        "Thành phố Hồ Chí Minh", "Tỉnh Cao Bằng", "Tỉnh Đắk Lắk", "Tỉnh Hòa Bình",
        "Tỉnh Cà Mau", "Thành phố Cần Thơ",
    ]  # fmt: skip
    h12 = units["H12"]
    assert (h12["Hạng"], float(h12["Tổng điểm"]), h12["Xếp loại"]) == ("5", 95.0, "Xuất sắc")
    assert float(h12["TDGQ"]) == 15.0  # 20 × 3/4
    assert (h12["Đủ dữ liệu"], h12["Thay đổi thứ hạng"]) == ("Có", "-2")
    assert units["H99"]["Thay đổi thứ hạng"] == ""  # new this month: no change (null)
    # Every cell is the JSON's value.
    for item in ranking["items"]:
        row = units[item["unit_code"]]
        for field, value in flatten(item).items():
            shown = row[VI.get(field, field)]
            if value is None:
                assert shown == ""
            elif isinstance(value, bool):
                assert shown == ("Có" if value else "Không")
            elif isinstance(value, int | float):
                assert float(shown) == value, (field, shown, value)
            else:
                assert shown == str(value), (field, shown, value)


async def test_english_headers_and_the_xlsx(client: httpx.AsyncClient, ranked: None) -> None:
    ranking = (await client.get("/v1/rankings", params=PARAMS)).json()
    fields = list(flatten(ranking["items"][0]))
    english = await client.get("/v1/rankings", params={**PARAMS, "format": "csv", "lang": "en"})
    rows = csv_rows(english.content)
    assert rows[0] == [EN.get(f, f) for f in fields]
    assert by_header(rows)["H05"]["Complete data"] == "Yes"
    assert english.headers["content-disposition"].startswith(
        'attachment; filename="rankings-province-national-2026-03.csv"'
    )

    as_csv = csv_rows(
        (await client.get("/v1/rankings", params={**PARAMS, "format": "csv"})).content
    )
    xlsx = await client.get("/v1/rankings", params=PARAMS, headers={"Accept": XLSX_TYPE})
    assert xlsx.headers["content-type"] == XLSX_TYPE
    assert xlsx.headers["content-disposition"].endswith(
        "filename*=UTF-8''xep-hang-province-ca-nuoc-2026-03.xlsx"
    )
    name, cells = xlsx_rows(xlsx.content)
    assert name == "Xếp hạng 2026-03"
    assert same_cells(as_csv, cells)
    assert cells[1][as_csv[0].index("Tên đơn vị")] == "Thành phố Hồ Chí Minh"
    name, cells = xlsx_rows(
        (
            await client.get("/v1/rankings", params={**PARAMS, "format": "xlsx", "lang": "en"})
        ).content
    )
    assert (name, cells[0]) == ("Rankings 2026-03", [EN.get(f, f) for f in fields])


async def test_exports_are_public_and_an_empty_ranking_has_headers(
    client: httpx.AsyncClient, ranked: None
) -> None:
    # No key: the file, as the JSON (the dashboard's links are plain links).
    communes = await client.get(
        "/v1/rankings", params={"level": "commune", "period": "2026-03", "format": "csv"}
    )
    assert communes.status_code == 200
    rows = csv_rows(communes.content)
    assert rows[0][:2] == ["Hạng", "Mã đơn vị"] or rows[0][:2] == ["Hạng", "Trong số"]
    assert len(rows) == 1
    refused = await client.get("/v1/rankings", params={**PARAMS, "format": "csv", "lang": "de"})
    assert refused.status_code == 422
