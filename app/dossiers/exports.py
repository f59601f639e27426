"""The overdue list as a file (CSV, XLSX): the JSON items' columns, written by
``app.core.exports``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi.responses import Response

from app.core.exports import Catalogue, Export, Table, file_response
from app.dossiers.schemas import OverdueItem

# Headers of an overdue item's columns by JSON field name.
OVERDUE_COLUMNS: Catalogue = {
    "code": ("Mã hồ sơ", "Dossier code"),
    "procedure_code": ("Mã thủ tục", "Procedure code"),
    "received_at": ("Thời điểm tiếp nhận", "Received at"),
    "due_at": ("Hạn giải quyết", "Due at"),
    "overdue_by": ("Số ngày làm việc quá hạn", "Overdue by (working days)"),
    "apology_issued": ("Đã có phiếu xin lỗi", "Apology letter issued"),
    "apology_new_due_at": ("Hạn mới theo phiếu xin lỗi", "New due time (apology letter)"),
}
TITLES = {"vi": ("Hồ sơ quá hạn", "ho-so-qua-han"), "en": ("Overdue dossiers", "overdue")}


def overdue_table(items: Sequence[OverdueItem], root: str, lang: str) -> Table:
    title = TITLES["en" if lang == "en" else "vi"][0]
    return Table.of(
        (item.model_dump() for item in items), OVERDUE_COLUMNS, f"{title} {root}",
        OverdueItem.model_fields,
    )  # fmt: skip


async def overdue_file(
    items: Sequence[OverdueItem], export: Export, timezone: str, root: str, at: datetime
) -> Response:
    """``ho-so-qua-han-H01-2026-03-10.csv`` (``overdue-H01-…`` in English): the local date."""
    tz = ZoneInfo(timezone)
    name = f"{TITLES[export.lang][1]}-{root}-{at.astimezone(tz).date()}"
    return await file_response(overdue_table(items, root, export.lang), export, tz, name)
