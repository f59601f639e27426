"""Wire shapes of indicator submissions (the catalog's own models are its wire shape)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from app.core.params import JSON_INTEGER
from app.core.vocabulary import named
from app.indicators.catalog import EmptyDenominator, Rule, Source
from app.indicators.periods import PERIOD_PATTERN, Period, PeriodKind
from app.units.schemas import UNIT_CODE_PATTERN

named(PeriodKind, {
    PeriodKind.month: ("Tháng", "Month"),
    PeriodKind.quarter: ("Quý", "Quarter"),
    PeriodKind.year: ("Năm", "Year"),
})  # fmt: skip
named(Rule, {
    Rule.linear: ("Tuyến tính: điểm tối đa × tỷ lệ", "Linear: max points × rate"),
    Rule.threshold: ("Theo ngưỡng: đủ điểm từ tỷ lệ ngưỡng", "Threshold: full marks from a rate"),
    Rule.tttt_composite: (
        "Công thức tổng hợp thanh toán trực tuyến (TTTT)", "Online-payment composite (TTTT)"
    ),
})  # fmt: skip
named(EmptyDenominator, {
    EmptyDenominator.zero: ("Không điểm", "Scores zero"),
    EmptyDenominator.full: ("Đủ điểm", "Scores full marks"),
    EmptyDenominator.missing: ("Không có số liệu (N/A)", "Missing (N/A, no points)"),
})  # fmt: skip
named(Source, {
    Source.submitted: ("Đơn vị gửi số liệu", "Submitted by units"),
    Source.records: ("Tính từ hồ sơ", "Computed from dossier records"),
    Source.records_submitted: (
        "Tính từ hồ sơ, một phần do đơn vị gửi", "From records, partly submitted"
    ),
})  # fmt: skip

MAX_BATCH = 5_000
METRIC_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Counts stay within the integers every JSON client reads exactly (I-JSON, RFC 7493: ±2^53-1),
# which is also what an OpenAPI schema can state exactly (its numbers are doubles).
MAX_COUNT = 2**53 - 1


def _normalised_period(text: str) -> str:
    return str(Period.parse(text))


PeriodText = Annotated[
    str,
    AfterValidator(_normalised_period),
    WithJsonSchema(
        {"type": "string", "pattern": PERIOD_PATTERN, "examples": ["2024-04", "2024-Q2", "2024"]}
    ),
]

Count = Annotated[int, Field(ge=0, le=MAX_COUNT), JSON_INTEGER]


class IndicatorValueIn(BaseModel):
    """One numerator/denominator pair of one unit, period and metric (or composite component)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        # Rules that depend on stored units and the catalog in force: no schema states them.
        json_schema_extra={
            "x-rules": [
                "unit_code names a unit that existed during the period (422), within the "
                "key's subtree (403)",
                "metric_code is a submitted metric (or component) of the catalog version in "
                "force for the period, reported per the period's kind (422)",
                "numerator is at most denominator for a share (422)",
                "the period has started (422)",
            ]
        },
    )

    unit_code: Annotated[str, Field(pattern=UNIT_CODE_PATTERN, examples=["H01.01"])]
    period: PeriodText
    metric_code: Annotated[str, Field(pattern=METRIC_CODE_PATTERN, examples=["DOSSIER_SYNC"])]
    numerator: Count
    denominator: Count

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.unit_code, self.period, self.metric_code)


class IndicatorValueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unit_code: str
    period: str
    period_kind: PeriodKind
    metric_code: str
    indicator: str | None = Field(
        default=None, description='The official indicator ("4.3") of the metric; null if none'
    )
    source: Source | None = Field(
        default=None, description="Where the metric's counts come from, per the catalog version"
    )
    numerator: int
    denominator: int
    revision: int
    submitted_by: str
    submitted_at: datetime
    key_id: uuid.UUID | None
    admin_scope: bool = Field(
        default=False,
        description="Made with the admin scope: for a metric the records feed, only such a "
        "value overrides the computed one (a unit's own is kept and shown, not scored)",
    )


class SubmissionResult(IndicatorValueOut):
    result: Literal["stored", "unchanged"] = Field(
        description="`unchanged`: identical to the latest revision, which is returned"
    )


class IndicatorItemResult(BaseModel):
    index: int
    result: Literal["stored", "unchanged", "rejected"]
    unit_code: str | None = None
    period: str | None = None
    metric_code: str | None = None
    indicator: str | None = Field(default=None, description="The metric's official indicator")
    source: Source | None = Field(default=None, description="Where the metric's counts come from")
    revision: int | None = Field(default=None, description="The stored (or latest) revision")
    admin_scope: bool | None = Field(
        default=None, description="The stored (or latest) revision was made with the admin scope"
    )
    errors: list[dict[str, Any]] | None = None


class IndicatorBatchResult(BaseModel):
    stored: int
    unchanged: int
    rejected: int
    items: list[IndicatorItemResult]
