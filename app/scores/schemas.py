"""Wire shapes of scores, scorecards, history and period states."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from app.core.vocabulary import named
from app.indicators.catalog import Source

# Names of the values of this module's enumerations (matched by their values in the OpenAPI).
named(Literal["computed", "official"], {
    "computed": ("Do chiso tính", "Computed by chiso"),
    "official": ("Kết quả công bố chính thức", "Official published results"),
}, title="ScoreSource")  # fmt: skip
named(Literal["open", "closed"], {
    "open": ("Đang mở: điểm còn thay đổi", "Open: scores may still change"),
    "closed": ("Đã chốt", "Closed"),
}, title="PeriodStatus")  # fmt: skip
named(Literal["records", "submitted", "admin"], {
    "records": ("Tính từ hồ sơ", "Computed from the records"),
    "submitted": ("Số liệu đơn vị gửi", "Submitted by the unit"),
    "admin": ("Số liệu quản trị gửi thay", "An admin's submission in its place"),
}, title="ScoredFrom")  # fmt: skip
named(Literal["json", "csv", "xlsx"], {
    "json": ("JSON", "JSON"),
    "csv": ("Tệp CSV", "CSV file"),
    "xlsx": ("Tệp Excel (XLSX)", "Excel workbook (XLSX)"),
}, title="ExportFormat")  # fmt: skip


class RankingItem(BaseModel):
    rank: int | None
    unit_code: str
    name: str
    total: float | None
    grade: str | None
    complete: bool
    completeness: float
    groups: dict[str, float | None]
    rank_change: int | None
    score_change: float | None
    integrity_flags: int = Field(
        description="Open data-integrity flags in the unit's subtree (they never change scores)"
    )


class Ranking(BaseModel):
    level: str
    parent: str | None
    period: str
    source: Literal["computed", "official"]
    catalog_version: str | None
    revision: int
    status: Literal["open", "closed"]
    projected: bool = Field(description="The period is still running: totals will move")
    ranked: int
    computed_at: datetime
    items: list[RankingItem]
    next: None = None


class ValueLine(BaseModel):
    """One candidate value of a metric and what it earns on its own."""

    numerator: int
    denominator: int
    rate: Decimal | None
    points: Decimal | None


class MetricLine(BaseModel):
    code: str
    indicator: str | None = Field(description='The official indicator ("4.3"); null if none')
    source: Source
    name: str
    points: Decimal | None
    max_points: Decimal
    lost: Decimal | None
    numerator: int | None
    denominator: int | None
    rate: Decimal | None
    full_marks_rate: Decimal | None
    missing: bool
    scored_from: Literal["records", "submitted", "admin"] = Field(
        description="Which value scored: computed from the records, submitted, or an "
        "admin-scope submission overriding the computed value"
    )
    overridden: bool = Field(description="An admin-scope submission replaced the computed value")
    computed: ValueLine | None = Field(
        default=None, description="Computed from the records (record-fed metrics)"
    )
    submitted: ValueLine | None = Field(
        default=None,
        description="The latest submission for a record-fed metric: a unit's own is shown, "
        "it does not score",
    )
    components: list[MetricLine] = Field(
        default_factory=list,
        description="A composite's parts (TTTT's A, B, C), each shown like a metric",
    )


class GroupLine(BaseModel):
    code: str
    name: str
    points: Decimal | None
    max_points: Decimal
    lost: Decimal | None
    metrics: list[MetricLine]


class Official(BaseModel):
    total: Decimal
    groups: dict[str, float]
    total_difference: Decimal | None
    group_differences: dict[str, Decimal | None]


class Scorecard(BaseModel):
    unit_code: str
    name: str
    level: str
    period: str
    revision: int
    status: Literal["open", "closed"]
    catalog_version: str
    total: Decimal | None
    grade: str | None
    complete: bool
    completeness: Decimal
    rank: str | None
    rank_change: int | None
    score_change: Decimal | None
    groups: list[GroupLine]
    shortfalls: list[MetricLine]
    official: Official | None
    pending_amendments: int


class HistoryPoint(BaseModel):
    period: str
    total: Decimal | None
    grade: str | None
    rank: int | None
    ranked_of: int | None
    groups: dict[str, float | None] | None


class History(BaseModel):
    unit_code: str
    granularity: Literal["month", "quarter", "year"]
    items: list[HistoryPoint]
    next: None = None


class PeriodStateOut(BaseModel):
    period: str
    status: Literal["open", "closed"]
    revision: int
    refreshed_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    pending_amendments: int
