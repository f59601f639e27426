"""Exported files read the way a spreadsheet reads them: CSV as Excel on Windows decodes it,
XLSX from its zip and sheet XML (no openpyxl in the project), cells shown by their number
format."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime, timedelta
from xml.etree import ElementTree

BOM = b"\xef\xbb\xbf"
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
EXCEL_EPOCH = datetime(1899, 12, 30)


def csv_rows(content: bytes) -> list[list[str]]:
    """The rows of a CSV export, which must start with the UTF-8 BOM (Excel then reads it as
    UTF-8; without it, as the Windows ANSI code page)."""
    assert content.startswith(BOM), content[:16]
    return list(csv.reader(io.StringIO(content[len(BOM) :].decode("utf-8"), newline="")))


def _column(reference: str) -> int:
    letters = re.match(r"[A-Z]+", reference)
    assert letters is not None
    index = 0
    for letter in letters.group():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _shown(value: float, code: str) -> str | float:
    """A number as its format shows it: our date-time pattern, fixed decimals; else the value."""
    if "yyyy" in code:
        instant = EXCEL_EPOCH + timedelta(days=value)
        instant = instant.replace(microsecond=0) + timedelta(
            seconds=round(instant.microsecond / 1e6)
        )
        literal = re.findall(r'"([^"]*)"', code)  # "T" and the offset
        return instant.strftime(f"%Y-%m-%d{literal[0]}%H:%M:%S{literal[1]}")
    fixed = re.fullmatch(r"0(?:\.(0+))?", code)
    if fixed:
        return f"{value:.{len(fixed.group(1) or '')}f}"
    return value


def xlsx_rows(content: bytes) -> tuple[str, list[list[str | float]]]:
    """The first sheet's name and cells: text as text, numbers as their format shows them
    (a number in the General format as a float)."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        sheet = workbook.find("m:sheets/m:sheet", NS)
        assert sheet is not None
        strings = []
        if "xl/sharedStrings.xml" in book.namelist():
            shared = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            strings = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in shared]
        styles = ElementTree.fromstring(book.read("xl/styles.xml"))
        codes = {
            int(f.get("numFmtId", "0")): f.get("formatCode", "")
            for f in styles.findall("m:numFmts/m:numFmt", NS)
        }
        formats = [
            codes.get(int(xf.get("numFmtId", "0")), "General")
            for xf in styles.findall("m:cellXfs/m:xf", NS)
        ]
        data = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows: list[list[str | float]] = []
    for row in data.findall("m:sheetData/m:row", NS):
        cells: list[str | float] = []
        for c in row.findall("m:c", NS):
            index = _column(c.get("r", "A"))
            cells.extend([""] * (index - len(cells)))
            raw = c.find("m:v", NS)
            value = raw.text if raw is not None and raw.text is not None else ""
            if c.get("t") == "s":
                cells.append(strings[int(value)])
            elif c.get("t") in ("str", "inlineStr"):
                cells.append(value)
            else:
                cells.append(_shown(float(value), formats[int(c.get("s", "0"))]))
        rows.append(cells)
    return sheet.get("name", ""), rows


def same_cells(csv_table: list[list[str]], xlsx_table: list[list[str | float]]) -> bool:
    """The XLSX holds the CSV's cells: the same text, the same numbers."""
    if len(csv_table) != len(xlsx_table):
        return False
    for text_row, book_row in zip(csv_table, xlsx_table, strict=True):
        book_row = book_row + [""] * (len(text_row) - len(book_row))
        if len(book_row) != len(text_row):
            return False
        for text, cell in zip(text_row, book_row, strict=True):
            if isinstance(cell, float):
                if text == "" or float(text) != cell:
                    return False
            elif text != cell:
                return False
    return True
