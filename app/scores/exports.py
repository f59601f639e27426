"""Rankings as CSV and XLSX, with Vietnamese column headers."""

from __future__ import annotations

import csv
import io
from typing import Any

import xlsxwriter

GROUP_CODES = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH")
HEADERS = [
    "Hạng",
    "Mã đơn vị",
    "Tên đơn vị",
    "Tổng điểm",
    "Xếp loại",
    "Thay đổi thứ hạng",
    "Thay đổi điểm",
    *GROUP_CODES,
    "Mức độ đầy đủ dữ liệu",
]


def _rows(ranking: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            item["rank"],
            item["unit_code"],
            item["name"],
            item["total"],
            item["grade"],
            item["rank_change"],
            item["score_change"],
            *(item["groups"].get(code) for code in GROUP_CODES),
            item["completeness"],
        ]
        for item in ranking["items"]
    ]


def to_csv(ranking: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for row in _rows(ranking):
        writer.writerow(["" if v is None else v for v in row])
    # A BOM so that spreadsheet programs read the Vietnamese diacritics as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(ranking: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(f"Xếp hạng {ranking['period']}"[:31])
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, HEADERS, bold)
    for index, row in enumerate(_rows(ranking), start=1):
        sheet.write_row(index, 0, row)
    sheet.set_column(2, 2, 40)
    book.close()
    return buffer.getvalue()
