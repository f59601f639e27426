"""Wire shapes of the working-day calendar."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.calendar.workdays import DayKind, LimitUnit
from app.core.params import NO_NUL_PATTERN
from app.core.vocabulary import named

named(DayKind, {
    DayKind.WORKDAY: ("Ngày làm việc", "Working day"),
    DayKind.HOLIDAY: ("Ngày nghỉ", "Day off"),
})  # fmt: skip
named(LimitUnit, {
    LimitUnit.WORKING_DAYS: ("Ngày làm việc", "Working days"),
    LimitUnit.WORKING_HOURS: ("Giờ làm việc", "Working hours"),
    LimitUnit.CALENDAR_DAYS: ("Ngày theo lịch", "Calendar days"),
    LimitUnit.MONTHS: ("Tháng", "Months"),
})  # fmt: skip
DaySource = Literal["weekday", "weekend", "public_holiday", "shipped_override", "operator_override"]
named(DaySource, {
    "weekday": ("Ngày thường", "Weekday"),
    "weekend": ("Cuối tuần", "Weekend"),
    "public_holiday": ("Ngày lễ, Tết", "Public holiday"),
    "shipped_override": (
        "Hoán đổi ngày làm việc theo văn bản (kèm theo chiso)",
        "Shipped override: a government swap, with its dispatch",
    ),
    "operator_override": ("Điều chỉnh của người vận hành", "Operator override"),
})  # fmt: skip


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DayKind
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL_PATTERN)]
    reference: Annotated[
        str | None,
        Field(
            max_length=200,
            pattern=NO_NUL_PATTERN,
            description="Dispatch number, e.g. 12729/VPCP-KGVX",
        ),
    ] = None


class OverrideOut(BaseModel):
    date: date
    kind: DayKind
    reason: str
    reference: str | None
    updated_by: str | None
    updated_at: datetime


class CalendarDayOut(BaseModel):
    date: date
    weekday: int = Field(description="ISO weekday, 1 = Monday")
    working: bool
    source: DaySource
    name: str | None = Field(description="Holiday name or the override's reason")
    reference: str | None = None


class DayOut(CalendarDayOut):
    """One date: whether offices work, why, and the office hours of that day."""

    public_holiday: str | None = Field(
        description="The public holiday of that date in the holidays list (Vietnamese name), "
        "also when an override decides the day; null when there is none"
    )
    office_hours: list[str] = Field(
        description="The office intervals of that day, HH:MM-HH:MM local time; empty on a day off"
    )
    opens_at: datetime | None = Field(description="The day's first opening (null: a day off)")
    closes_at: datetime | None = Field(
        description="The day's last closing: a deadline on that day falls at this instant "
        "(null: a day off)"
    )
    intake_cutoff: str | None = Field(
        description="Receipts after this local time count from the next working day (null: none)"
    )


class CalendarOut(BaseModel):
    office_hours: list[str]
    intake_cutoff: str | None
    items: list[CalendarDayOut]
    next: None = None
