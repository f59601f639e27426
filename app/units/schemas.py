"""Wire shapes of units."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.units.models import UnitLevel

UNIT_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
UnitCode = Annotated[str, Field(pattern=UNIT_CODE_PATTERN, examples=["H01"])]


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=500)]
    level: UnitLevel
    parent_code: UnitCode | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    successor_code: UnitCode | None = None

    @model_validator(mode="after")
    def _validity_ordered(self) -> UnitIn:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        return self


class UnitRecord(UnitIn):
    """A unit with its code, as loaded from CSV."""

    code: UnitCode


class UnitRef(BaseModel):
    code: str
    name: str
    level: UnitLevel


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: UnitLevel
    parent_code: str | None
    valid_from: date | None
    valid_to: date | None
    successor_code: str | None


class UnitDetail(UnitOut):
    parents: list[UnitRef] = Field(description="Ancestors, nearest first")
    children_count: int
