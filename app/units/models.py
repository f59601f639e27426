"""The ``units`` table: one row per administrative unit, with validity and merger successor."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, Timestamped


class UnitLevel(StrEnum):
    ministry = "ministry"
    province = "province"
    department = "department"
    district = "district"
    commune = "commune"
    desk = "desk"


class Unit(Timestamped, Base):
    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), nullable=True
    )
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    successor_code: Mapped[str | None] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), nullable=True
    )

    __table_args__ = (
        CheckConstraint(
            "level IN ('ministry','province','department','district','commune','desk')",
            name="level_known",
        ),
        CheckConstraint(
            "valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
            name="validity_ordered",
        ),
        CheckConstraint("parent_code IS NULL OR parent_code <> code", name="not_own_parent"),
        Index("ix_units_parent_code_code", "parent_code", "code"),
        Index("ix_units_level_code", "level", "code"),
    )
