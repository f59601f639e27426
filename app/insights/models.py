"""Integrity flags per unit, period and rule; daily month-end projections per unit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

_TS = DateTime(timezone=True)


class IntegrityFlag(Base):
    """Data that looks manufactured: one row per unit, month and rule, with its dossiers.

    Recomputed by the worker (the period's rows are replaced by what the rules find now); a
    flag the rules no longer find is kept as resolved. Flags never change scores.
    """

    __tablename__ = "integrity_flags"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), nullable=False
    )
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    rule: Mapped[str] = mapped_column(String(48), nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="open")
    dossier_codes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    first_flagged_at: Mapped[datetime] = mapped_column(
        _TS, nullable=False, server_default=func.now()
    )
    computed_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(_TS)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('open','resolved')", name="status_known"),
        UniqueConstraint("unit_code", "period", "rule"),
        Index("ix_integrity_flags_period_status", "period", "status"),
    )


class ScoreProjection(Base):
    """Where a unit was projected to land at the end of a running month, as made on one day."""

    __tablename__ = "score_projections"

    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    made_on: Mapped[date] = mapped_column(Date, primary_key=True)
    made_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    catalog_version: Mapped[str] = mapped_column(String(64), nullable=False)
    on_time: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    tdgq: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    total: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    total_low: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    total_high: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    grade: Mapped[str | None] = mapped_column(String(32))
    completeness: Mapped[Decimal] = mapped_column(Numeric(5, 4), nullable=False)
    rank: Mapped[int | None] = mapped_column(Integer)
    rank_best: Mapped[int | None] = mapped_column(Integer)
    rank_worst: Mapped[int | None] = mapped_column(Integer)
    ranked_of: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_score_projections_period_made_on", "period", "made_on"),)
