"""Wire shapes of scores, scorecards, history and period states."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.numbers import Percent, Points
from app.core.vocabulary import named
from app.indicators.catalog import Source
from app.indicators.periods import Period, PeriodText
from app.units.schemas import UnitCode

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


# Field names shared by every answer that carries a score: `total`, `grade`, `rank`, `of`,
# `rank_change`, `score_change`, `groups`, `points`, `max_points`, `lost`, `rate`,
# `completeness`; points and rates as JSON numbers (app/core/numbers.py).
RANK = (
    "Competition rank among the units of the same level (ties share it, the next skips); "
    "null without a total"
)
OF = "How many units of that level were ranked (the same for every unit of a ranking)"
RANK_CHANGE = (
    "Places gained since the previous period of the same kind (positive: up), against it "
    "scored with the same rules; null when not comparable"
)
COMPUTED_AT = "When these scores were computed (the period's last refresh)"
INPUTS_PENDING = (
    "An input of the period (a dossier event counted in it, an indicator value) arrived after "
    "`computed_at` and waits for the next refresh (the worker's, within a minute, or "
    "`POST /v1/scores/refresh`); always false for a closed period (see `pending_amendments`)"
)


class RankingItem(BaseModel):
    rank: int | None = Field(description=RANK)
    of: int = Field(description=OF)
    unit_code: str
    name: str
    total: Points | None
    grade: str | None
    complete: bool
    completeness: Percent = Field(description="Share of the 100 points whose metrics have data")
    groups: dict[str, Points | None]
    rank_change: int | None = Field(description=RANK_CHANGE)
    score_change: Points | None
    integrity_flags: int = Field(
        description="Open data-integrity flags in the unit's subtree (they never change scores)"
    )


class Ranking(BaseModel):
    inputs_pending: bool = Field(description=INPUTS_PENDING)
    computed_at: datetime = Field(description=COMPUTED_AT)
    level: str
    parent: str | None
    period: str
    source: Literal["computed", "official"]
    catalog_version: str | None
    revision: int
    status: Literal["open", "closed"]
    projected: bool = Field(description="The period is still running: totals will move")
    ranked: int = Field(description="How many units are ranked (every item's `of`)")
    items: list[RankingItem]
    next: None = None


class ValueLine(BaseModel):
    """One candidate value of a metric and what it earns on its own."""

    numerator: int
    denominator: int
    rate: Percent | None
    points: Points | None


class MetricLine(BaseModel):
    code: str
    indicator: str | None = Field(description='The official indicator ("4.3"); null if none')
    source: Source
    name: str
    points: Points | None
    max_points: Points
    lost: Points | None
    numerator: int | None
    denominator: int | None
    rate: Percent | None
    full_marks_rate: Percent | None = Field(
        description="The rate from which the line earns its maximum (a percentage)"
    )
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
    points: Points | None
    max_points: Points
    lost: Points | None
    metrics: list[MetricLine]


class Official(BaseModel):
    total: Points
    groups: dict[str, Points]
    total_difference: Points | None = Field(description="Computed total − official total")
    group_differences: dict[str, Points | None]


class Scorecard(BaseModel):
    unit_code: str
    name: str
    level: str
    period: str
    revision: int
    status: Literal["open", "closed"]
    computed_at: datetime = Field(description=COMPUTED_AT)
    inputs_pending: bool = Field(description=INPUTS_PENDING)
    catalog_version: str
    total: Points | None
    grade: str | None
    complete: bool
    completeness: Percent = Field(description="Share of the 100 points whose metrics have data")
    rank: int | None = Field(description=RANK)
    of: int | None = Field(description=OF)
    rank_change: int | None = Field(description=RANK_CHANGE)
    score_change: Points | None
    groups: list[GroupLine]
    shortfalls: list[MetricLine]
    official: Official | None
    pending_amendments: int


class HistoryPoint(BaseModel):
    period: str
    total: Points | None
    grade: str | None
    rank: int | None = Field(description=RANK)
    of: int | None = Field(description=OF)
    groups: dict[str, Points | None] | None
    computed_at: datetime | None = Field(description=COMPUTED_AT + "; null if never computed")
    inputs_pending: bool = Field(description=INPUTS_PENDING)


class History(BaseModel):
    unit_code: str
    granularity: Literal["month", "quarter", "year"]
    inputs_pending: bool = Field(description="Some period of the history has inputs pending")
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


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: PeriodText = Field(description="The period to recompute (month, quarter or year)")
    unit: UnitCode | None = Field(
        default=None,
        description="Required with a key bound to a unit: that unit or one of its subunits (the "
        "whole period is recomputed, the unit says for whom)",
    )

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        return str(Period.parse(value))  # ValueError: a 422 naming #/period


class RefreshOut(BaseModel):
    period: str
    status: Literal["open", "closed"]
    revision: int
    computed_at: datetime | None = Field(description=COMPUTED_AT)
    inputs_pending: bool = Field(description=INPUTS_PENDING)
    recomputed: bool = Field(
        description="This request recomputed the period; false when it shared the refresh "
        "another request (or the worker) was running when it came, or the period is closed"
    )
