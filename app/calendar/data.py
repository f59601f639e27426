"""Shipped working-day overrides (government swaps the holidays package lacks), as versioned data.

Read and validated once at start-up, so a malformed file stops the service instead of skewing
deadlines.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib.resources import files
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from app.calendar.workdays import DayKind

SHIPPED_OVERRIDES_FILE = "overrides.yaml"


class OverrideDataError(ValueError):
    """Override data that cannot be trusted: unreadable YAML, a bad field or a repeated date."""


class CalendarOverride(BaseModel):
    """One date whose working status differs from Mon–Fri minus public holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    date: dt.date
    kind: DayKind
    reason: str = Field(min_length=1)
    reference: str = Field(min_length=1)


class CalendarOverrides(BaseModel):
    """A versioned release of overrides; at most one entry per date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: PositiveInt
    published: dt.date
    overrides: tuple[CalendarOverride, ...]

    @model_validator(mode="after")
    def _one_entry_per_date(self) -> Self:
        # Two entries for one date would make the outcome depend on file order.
        seen: set[dt.date] = set()
        repeated: set[dt.date] = set()
        for override in self.overrides:
            (repeated if override.date in seen else seen).add(override.date)
        if repeated:
            raise ValueError(
                "more than one override for " + ", ".join(d.isoformat() for d in sorted(repeated))
            )
        return self

    def by_date(self) -> dict[dt.date, DayKind]:
        return {o.date: o.kind for o in self.overrides}


def parse_overrides(text: str, source: str = "<string>") -> CalendarOverrides:
    """Validate an override document; any defect raises OverrideDataError naming ``source``."""
    try:
        document = yaml.safe_load(text)
        return CalendarOverrides.model_validate(document)
    except yaml.YAMLError as exc:
        raise OverrideDataError(f"{source}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise OverrideDataError(f"{source}: invalid calendar overrides:\n{exc}") from exc


@cache
def load_shipped_release() -> CalendarOverrides:
    """The overrides shipped with the service (read once; the model is immutable)."""
    resource = files("app.calendar").joinpath(SHIPPED_OVERRIDES_FILE)
    return parse_overrides(resource.read_text(encoding="utf-8"), source=str(resource))


def shipped_override_entries() -> tuple[CalendarOverride, ...]:
    """Shipped entries with their reasons and references, e.g. for an API to list."""
    return load_shipped_release().overrides


def load_shipped_overrides() -> dict[dt.date, DayKind]:
    """Shipped overrides as a fresh mapping for WorkingCalendar(overrides=...)."""
    return load_shipped_release().by_date()
