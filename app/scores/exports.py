"""Rankings as files (CSV, XLSX): the JSON items' columns, written by ``app.core.exports``."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import Response

from app.core.exports import Catalogue, Export, Table, file_response
from app.scores.schemas import RankingItem

# Headers of a ranking's columns by JSON field name; a field not named here is headed by its
# own name. ``groups.*``: one column per index group, headed by its code.
RANKING_COLUMNS: Catalogue = {
    "rank": ("Hạng", "Rank"),
    "of": ("Trong số", "Out of"),
    "ranked_of": ("Trong số", "Out of"),
    "unit_code": ("Mã đơn vị", "Unit code"),
    "name": ("Tên đơn vị", "Unit name"),
    "total": ("Tổng điểm", "Total score"),
    "grade": ("Xếp loại", "Grade"),
    "complete": ("Đủ dữ liệu", "Complete data"),
    "completeness": ("Mức độ đầy đủ dữ liệu", "Data completeness"),
    "groups.*": ("{}", "{}"),
    "groups": ("Điểm theo nhóm", "Group scores"),  # an empty ranking: no group is named
    "rank_change": ("Thay đổi thứ hạng", "Rank change"),
    "score_change": ("Thay đổi điểm", "Score change"),
    "integrity_flags": ("Cảnh báo dữ liệu đang mở", "Open data-integrity flags"),
    "inputs_pending": ("Còn số liệu chờ tính", "Inputs pending"),
}
TITLES = {"vi": ("Xếp hạng", "xep-hang", "ca-nuoc"), "en": ("Rankings", "rankings", "national")}


def ranking_table(ranking: dict[str, Any], lang: str) -> Table:
    """A ranking's items (as its JSON has them) as a table."""
    title = TITLES["en" if lang == "en" else "vi"][0]
    return Table.of(
        ranking["items"], RANKING_COLUMNS, f"{title} {ranking['period']}", RankingItem.model_fields
    )


async def ranking_file(
    ranking: dict[str, Any], export: Export, timezone: str, *, level: str, parent: str | None
) -> Response:
    """``xep-hang-province-ca-nuoc-2026-03.csv`` (``rankings-province-national-…`` in English)."""
    _, stem, everywhere = TITLES[export.lang]
    name = f"{stem}-{level}-{parent or everywhere}-{ranking['period']}"
    return await file_response(
        ranking_table(ranking, export.lang), export, ZoneInfo(timezone), name
    )
