"""Wire shapes of units."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.params import NO_NUL_PATTERN, IsoDate
from app.core.vocabulary import named
from app.units.models import UnitLevel

named(UnitLevel, {
    UnitLevel.ministry: ("Bộ, cơ quan ngang bộ", "Ministry"),
    UnitLevel.province: ("Tỉnh, thành phố trực thuộc trung ương", "Province or central city"),
    UnitLevel.department: ("Sở, ban, ngành", "Department"),
    UnitLevel.district: ("Quận, huyện (đến 30/6/2025)", "District (until 30 June 2025)"),
    UnitLevel.commune: ("Xã, phường, đặc khu", "Commune, ward or special zone"),
    UnitLevel.desk: ("Bộ phận Một cửa", "One-stop desk"),
})  # fmt: skip

UNIT_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
UnitCode = Annotated[str, Field(pattern=UNIT_CODE_PATTERN, examples=["H01"])]
# The electronic identifier (mã định danh, Decision 20/2020/QĐ-TTg): digits and letters in
# dot-separated groups, e.g. 000.00.12.H01. Portal records name their unit by it.
UNIT_IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.]{0,63}$"
UnitIdentifier = Annotated[str, Field(pattern=UNIT_IDENTIFIER_PATTERN, examples=["000.00.12.H01"])]


class UnitIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # Rules that relate the body to stored units or to the path: no schema states them.
        json_schema_extra={
            "x-rules": [
                "valid_to is not before valid_from",
                "parent_code and successor_code name existing units (or units of the same "
                "load); a unit is not its own parent, nor its own ancestor",
                "an admin key bound to a unit: the unit and its references lie in its subtree",
                "identifier is no other unit's identifier or code, and the unit's code is no "
                "other unit's identifier (409 naming that unit otherwise)",
            ]
        },
    )

    name: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL_PATTERN)]
    level: UnitLevel
    parent_code: UnitCode | None = None
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None
    successor_code: UnitCode | None = None
    identifier: UnitIdentifier | None = Field(
        default=None,
        description="Electronic identifier (mã định danh), unique; `null` clears it, leaving "
        "the field out keeps the stored one",
    )

    @model_validator(mode="after")
    def _validity_ordered(self) -> UnitIn:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        return self


class UnitRecord(UnitIn):
    """A unit with its code, as loaded from CSV. ``identifier`` counts as given only when it is
    in :attr:`model_fields_set` (a CSV with the column, a PUT body with the field)."""

    code: UnitCode

    @property
    def sets_identifier(self) -> bool:
        return "identifier" in self.model_fields_set


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
    identifier: str | None


class UnitDetail(UnitOut):
    parents: list[UnitRef] = Field(description="Ancestors, nearest first")
    children_count: int
