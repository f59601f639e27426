"""The ``units`` table: one row per administrative unit, with validity and merger successor."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
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
    # The electronic identifier (mã định danh, e.g. ``000.00.12.H01``) other systems name the
    # unit by: portal records carry it as madonvi, MaDinhDanhDV and their MaHoSo prefix.
    identifier: Mapped[str | None] = mapped_column(String(64), nullable=True)

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
        CheckConstraint("identifier ~ '^[A-Za-z0-9][A-Za-z0-9.]{0,63}$'", name="identifier_format"),
        # Checked at the end of each statement, so one load may swap two units' identifiers.
        UniqueConstraint("identifier", deferrable=True, initially="IMMEDIATE"),
        Index("ix_units_parent_code_code", "parent_code", "code"),
        Index("ix_units_level_code", "level", "code"),
    )
