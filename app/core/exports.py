"""Exported lists as files that a spreadsheet opens right: CSV and XLSX, one writer for all.

Every export of the API goes through here, so every file follows the same rules:

- **The JSON's columns.** A file has one column per field of the JSON items it exports, in
  their order; a nested object becomes one column per key (``groups.CKMB``). A column's header
  comes from the export's *catalogue*, keyed by the JSON field name (``prefix.*`` covers every
  key of a nested object, ``{}`` standing for the key); a field the catalogue does not know is
  headed by its own name, so a new field shows up in the file the day it shows up in the JSON.
- **Vietnamese headers by default**, English with ``?lang=en`` (a link is clicked: it cannot
  set ``Accept-Language``). Yes/no cells read ``Có`` / ``Không`` (``Yes`` / ``No``).
- **CSV**: UTF-8 with a byte order mark, so Excel on Windows reads "Mỹ Hòa Hưng" as UTF-8
  and not in the ANSI code page; comma-separated, CRLF rows, numbers with a decimal point as in
  the JSON (a spreadsheet set to a comma decimal reads numbers best from the XLSX). A text cell
  starting with ``=``, ``+``, ``-`` or ``@`` gets a leading ``'`` so a spreadsheet never runs it
  as a formula.
- **Times in local time, written as ISO 8601 with the offset**: ``2026-03-05T10:00:00+07:00``
  (the service's time zone, ``CHISO_TIMEZONE``). Why not ``05/03/2026 10:00``: a spreadsheet
  set to US dates reads that as 3 May, and one set to Vietnamese dates turns it into a date
  with no zone; the ISO form is the same instant as the JSON's, reads the same in every locale,
  and sorts in time order as text. In an XLSX file a time is a real date-time cell (it sorts,
  filters and subtracts) whose number format shows exactly the CSV's text.
- **XLSX** (xlsxwriter): the same cells, numbers as numbers (a decimal keeps its places:
  ``2.50``), the header row bold and frozen, a filter on it.
- **ASCII file names**: ``Content-Disposition: attachment; filename="…"; filename*=UTF-8''…``
  (RFC 6266), the name stripped of diacritics and of anything but letters, digits, ``-``, ``_``
  and ``.``, in both forms.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import xlsxwriter
from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.core.language import DEFAULT, Language
from app.core.vocabulary import named

ExportFormat = Literal["json", "csv", "xlsx"]
named(ExportFormat, {
    "json": ("JSON", "JSON"),
    "csv": ("Tệp CSV", "CSV file"),
    "xlsx": ("Tệp Excel (XLSX)", "Excel workbook (XLSX)"),
}, title="ExportFormat")  # fmt: skip

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_CONTENT: dict[str, dict[str, Any]] = {"text/csv": {}, XLSX_TYPE: {}}
BOM = codecs.BOM_UTF8
YES_NO: dict[Language, tuple[str, str]] = {"vi": ("Có", "Không"), "en": ("Yes", "No")}

# A header per language: (Vietnamese, English).
Header = tuple[str, str]
Catalogue = Mapping[str, Header]
# Fields that mean the same in every export: the same header everywhere.
COMMON: dict[str, Header] = {
    "unit_code": ("Mã đơn vị", "Unit code"),
    "unit_name": ("Tên đơn vị", "Unit name"),
    "level": ("Cấp đơn vị", "Level"),
    "period": ("Kỳ", "Period"),
    "computed_at": ("Thời điểm tính", "Computed at"),
}

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 64_000


@dataclass(frozen=True, slots=True)
class Export:
    """What a client asked for: the format (``json``: no file) and the headers' language."""

    format: ExportFormat
    lang: Language


def export_request(
    request: Request,
    format: Annotated[
        ExportFormat | None,
        Query(
            description="`csv` or `xlsx` for a file (else the `Accept` header decides: "
            f"`text/csv`, `{XLSX_TYPE}`); `json` by default"
        ),
    ] = None,
    lang: Annotated[
        Language,
        Query(description="The language of a file's column headers: `vi` (default) or `en`"),
    ] = DEFAULT,
) -> Export:
    if format is None:
        accept = request.headers.get("accept", "")
        format = "csv" if "text/csv" in accept else "xlsx" if XLSX_TYPE in accept else "json"
    return Export(format, lang)


ExportQuery = Annotated[Export, Depends(export_request)]


# --- columns ---------------------------------------------------------------------------------


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A JSON item as columns: nested objects by ``parent.key``, lists joined by ``; ``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = "; ".join("" if v is None else str(v) for v in value)
        else:
            flat[name] = value
    return flat


def columns_of(rows: Sequence[Mapping[str, Any]], fallback: Iterable[str] = ()) -> list[str]:
    """Every column of flattened ``rows`` in order of appearance (``fallback`` when empty)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen) if seen else list(fallback)


def header(column: str, catalogue: Catalogue, lang: Language) -> str:
    """A column's header: the catalogue's, by field name, then by ``prefix.*``; else the name."""
    index = 0 if lang == "vi" else 1
    known = catalogue.get(column) or COMMON.get(column)
    if known is not None:
        return known[index]
    prefix, dot, key = column.rpartition(".")
    pattern = catalogue.get(f"{prefix}.*") if dot else None
    return pattern[index].format(key) if pattern is not None else column


# --- cells -----------------------------------------------------------------------------------


Cell = str | int | float | Decimal | datetime


def cell(value: Any, tz: ZoneInfo, lang: Language) -> Cell:
    """A JSON value as a spreadsheet cell: instants in local time, yes/no in words."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES_NO[lang][0 if value else 1]
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return value.astimezone(tz) if value.tzinfo is not None else value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        return datetime.fromisoformat(value).astimezone(tz)
    if isinstance(value, int | float | Decimal | str):
        return value
    return str(value)


def text(value: Cell) -> str:
    """A cell as CSV text."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return str(value)


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of JSON items, ready to write: the columns and their catalogue."""

    columns: Sequence[str]
    rows: Sequence[Mapping[str, Any]]  # flattened
    catalogue: Catalogue
    title: str  # an XLSX sheet's name

    @classmethod
    def of(
        cls,
        items: Iterable[Mapping[str, Any]],
        catalogue: Catalogue,
        title: str,
        fields: Iterable[str] = (),
    ) -> Table:
        """A table of JSON items (``fields``: the columns when there are no items)."""
        rows = [flatten(item) for item in items]
        return cls(columns_of(rows, fields), rows, catalogue, title)

    def headers(self, lang: Language) -> list[str]:
        return [header(c, self.catalogue, lang) for c in self.columns]

    def cells(self, tz: ZoneInfo, lang: Language) -> Iterator[list[Cell]]:
        for row in self.rows:
            yield [cell(row.get(c), tz, lang) for c in self.columns]


# --- writers ---------------------------------------------------------------------------------


def csv_chunks(table: Table, tz: ZoneInfo, lang: Language) -> Iterator[bytes]:
    """The CSV file in pieces of about 64 kB: the BOM, the header row, the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.headers(lang))
    first = True
    for row in table.cells(tz, lang):
        writer.writerow([text(v) for v in row])
        if buffer.tell() > _CHUNK:
            yield (BOM if first else b"") + buffer.getvalue().encode("utf-8")
            first = False
            buffer.seek(0)
            buffer.truncate()
    yield (BOM if first else b"") + buffer.getvalue().encode("utf-8")


def to_csv(table: Table, tz: ZoneInfo, lang: Language) -> bytes:
    return b"".join(csv_chunks(table, tz, lang))


def _offset(value: datetime) -> str:
    raw = value.strftime("%z")  # +0700
    return f"{raw[:3]}:{raw[3:]}" if raw else ""


def to_xlsx(table: Table, tz: ZoneInfo, lang: Language) -> bytes:
    """The XLSX workbook: one sheet, the same cells as the CSV."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(sheet_name(table.title))
    bold = book.add_format({"bold": True})
    formats: dict[str, Any] = {}

    def number_format(pattern: str) -> Any:
        if pattern not in formats:
            formats[pattern] = book.add_format({"num_format": pattern})
        return formats[pattern]

    headers = table.headers(lang)
    widths = [len(h) for h in headers]
    sheet.write_row(0, 0, headers, bold)
    for r, row in enumerate(table.cells(tz, lang), start=1):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                shown = f'yyyy-mm-dd"T"hh:mm:ss"{_offset(value)}"'
                sheet.write_datetime(r, c, value.replace(tzinfo=None), number_format(shown))
                widths[c] = max(widths[c], 25)
            elif isinstance(value, Decimal):
                places = max(0, -int(value.as_tuple().exponent))
                pattern = "0." + "0" * places if places else "0"
                sheet.write_number(r, c, float(value), number_format(pattern))
                widths[c] = max(widths[c], len(str(value)))
            elif isinstance(value, int | float):
                sheet.write_number(r, c, value)
                widths[c] = max(widths[c], len(str(value)))
            else:
                sheet.write_string(r, c, value)
                widths[c] = max(widths[c], len(value))
    for c, width in enumerate(widths):
        sheet.set_column(c, c, min(60, width + 2))
    sheet.freeze_panes(1, 0)
    if table.columns:
        sheet.autofilter(0, 0, max(0, len(table.rows)), len(table.columns) - 1)
    book.close()
    return buffer.getvalue()


def sheet_name(title: str) -> str:
    """A valid sheet name: no ``[]:*?/\\``, at most 31 characters."""
    return re.sub(r"[\[\]:*?/\\]", "-", title)[:31] or "Sheet1"


# --- answers ---------------------------------------------------------------------------------


def ascii_name(name: str) -> str:
    """A file name in ASCII: diacritics dropped (đ → d), other characters made ``-``."""
    plain = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return _UNSAFE_NAME.sub("-", plain).strip("-.") or "export"


def attachment(filename: str) -> dict[str, str]:
    """``Content-Disposition`` for a download, in the ASCII and the RFC 5987 forms."""
    name = ascii_name(filename)
    return {
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    }


async def file_response(table: Table, export: Export, tz: ZoneInfo, stem: str) -> Response:
    """The table as the file ``export`` asks for (CSV streamed, XLSX built off the loop)."""
    if export.format == "csv":
        return StreamingResponse(
            csv_chunks(table, tz, export.lang),
            media_type=CSV_TYPE,
            headers=attachment(f"{stem}.csv"),
        )
    if export.format == "xlsx":
        body = await run_in_threadpool(to_xlsx, table, tz, export.lang)
        return Response(body, media_type=XLSX_TYPE, headers=attachment(f"{stem}.xlsx"))
    raise ValueError(f"not a file format: {export.format!r}")
