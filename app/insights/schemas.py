"""Wire shapes of the what-if planner, month-end projections and integrity flags."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.core.numbers import Percent, Points, PointsPerUnit
from app.core.params import NO_NUL_PATTERN
from app.core.vocabulary import named
from app.indicators.periods import MonthText

# Names of the values of this module's enumerations (matched by their values in the OpenAPI).
named(Literal["grade", "rank", "score"], {
    "grade": ("Xếp loại", "Grade"),
    "rank": ("Thứ hạng", "Rank"),
    "score": ("Điểm", "Score"),
}, title="TargetKind")  # fmt: skip
named(Literal["previous_months", "this_month_so_far", "none"], {
    "previous_months": ("Các tháng trước", "Previous months"),
    "this_month_so_far": ("Tháng này đến nay", "This month so far"),
    "none": ("Chưa có cơ sở", "No basis yet"),
}, title="OnTimeShareBasis")  # fmt: skip
named(Literal["open", "resolved"], {
    "open": ("Chưa xử lý", "Open"),
    "resolved": ("Đã xử lý", "Resolved"),
}, title="FlagStatus")  # fmt: skip

# --- what-if ---------------------------------------------------------------------------------


class TargetOut(BaseModel):
    kind: Literal["grade", "rank", "score"]
    value: str = Field(description="Grade name, rank or score as asked (normalised)")
    label: str = Field(examples=["grade Tốt", "rank 10", "score 80.00"])
    total_needed: Points | None = Field(
        description="The published total that reaches the target (other units held fixed)"
    )


class StandingOut(BaseModel):
    total: Points | None
    grade: str | None
    complete: bool
    rank: int | None
    of: int | None = Field(description="How many units of the level are ranked")


class ImprovementOut(BaseModel):
    """One metric (or TTTT component) to raise, in the units officials act on."""

    group_code: str
    metric_code: str
    component_code: str | None
    name: str
    action: str = Field(
        examples=["312 more dossiers finished early or on time, plus pending and within time "
                  "(of 1000 dossiers received or processed in the period): 50.0% → 81.2%"]
    )  # fmt: skip
    additional: int = Field(description="More numerator units, denominator unchanged")
    numerator_from: int
    numerator_to: int
    denominator: int
    rate_from: Percent
    rate_to: Percent
    points_gained: Points
    points_per_unit: PointsPerUnit


class WhatIfOut(BaseModel):
    unit_code: str
    name: str
    level: str
    period: str
    status: Literal["open", "closed"]
    catalog_version: str
    target: TargetOut
    current: StandingOut
    reachable: bool
    already_reached: bool
    message: str
    improvements: list[ImprovementOut]
    additional_units: int
    after: StandingOut | None = Field(description="The standing once the plan is carried out")
    best_possible_total: Points | None = Field(
        description="Full marks on every metric that has data"
    )
    missing_metrics: list[str]
    unmeasured: list[str] = Field(description="Codes with an empty denominator: nothing to raise")
    method: str


# --- projections -----------------------------------------------------------------------------


class OnTimeOutlookOut(BaseModel):
    """Indicator 2.1 dossiers of the unit's subtree at the instant of the projection."""

    dossiers: int = Field(description="Received or processed in the month so far")
    finished_on_time: int
    finished_late: int
    overdue: int = Field(description="Open and already past due: late whatever happens")
    safe: int = Field(description="Open, in time and due after the month (or clock stopped)")
    coming_due: int = Field(description="Open, in time, due before the month ends")
    on_time_share: Percent | None = Field(
        description="Of the dossiers that came due, the share finished or pending in time"
    )
    on_time_share_basis: Literal["previous_months", "this_month_so_far", "none"]
    expected_on_time: int = Field(description="Of those coming due: on_time_share × coming_due")
    expected_arrivals: int = Field(description="Receipts so far × remaining ÷ elapsed days")


class TdgqRange(BaseModel):
    numerator: int
    denominator: int
    points: Points
    low: Points
    high: Points


class ProjectionOut(BaseModel):
    made_on: date
    made_at: datetime
    on_time: OnTimeOutlookOut
    tdgq: TdgqRange | None
    total: Points | None
    total_low: Points | None
    total_high: Points | None
    grade: str | None
    completeness: Percent
    rank: int | None
    rank_best: int | None
    rank_worst: int | None
    of: int | None = Field(description="How many units of the level are ranked")


class ComparedProjectionOut(ProjectionOut):
    total_error: Points | None = Field(description="actual − projected total")
    within_range: bool | None
    rank_error: int | None = Field(description="actual − projected rank")


class ActualOut(BaseModel):
    total: Points | None
    grade: str | None
    complete: bool
    rank: int | None
    of: int | None = Field(description="How many units of the level are ranked")
    tdgq_points: Points | None
    tdgq_numerator: int | None
    tdgq_denominator: int | None


class ProjectionReportOut(BaseModel):
    unit_code: str
    name: str
    level: str
    period: str
    running: bool
    as_of: datetime
    projection: ProjectionOut | None = Field(description="Made now (running period only)")
    actual: ActualOut | None = Field(description="The computed result once the period ended")
    history: list[ComparedProjectionOut] = Field(
        description="Projections stored by the daily job, oldest first, beside the actual"
    )
    method: str


# --- integrity -------------------------------------------------------------------------------


class IntegrityFlagOut(BaseModel):
    unit_code: str
    unit_name: str
    period: str
    rule: str
    title: str
    title_vi: str
    status: Literal["open", "resolved"]
    threshold: dict[str, Any]
    evidence: dict[str, Any]
    dossier_count: int
    dossiers: list[str]
    first_flagged_at: datetime
    computed_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None


class ResolveIn(BaseModel):
    period: MonthText = Field(description="The month of the flag (flags are kept per month)")
    note: str = Field(min_length=1, max_length=2000, pattern=NO_NUL_PATTERN)
