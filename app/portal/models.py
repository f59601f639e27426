"""Portal sync state per source, quarantined records and official index results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

_TS = DateTime(timezone=True)


class PortalSyncState(Base):
    """Where the sync of one source stands. The cursor only moves with a committed page."""

    __tablename__ = "portal_sync_state"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_run_at: Mapped[datetime | None] = mapped_column(_TS)
    last_success_at: Mapped[datetime | None] = mapped_column(_TS)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(_TS)
    records_synced: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    pages_synced: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


class QuarantinedRecord(Base):
    """A record the portal sent that could not be stored, kept raw with why."""

    __tablename__ = "portal_quarantine"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    record_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    dossier_code: Mapped[str | None] = mapped_column(String(128))
    raw: Mapped[Any] = mapped_column(JSONB, nullable=False)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    times_seen: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __table_args__ = (UniqueConstraint("source", "record_hash"),)


class OfficialScore(Base):
    """The portal's published index result for one unit and period (a snapshot)."""

    __tablename__ = "official_scores"

    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    time_type: Mapped[str] = mapped_column(String(8), nullable=False)
    total: Mapped[Decimal] = mapped_column(Numeric(6, 2), nullable=False)
    score_delta: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    group_scores: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    fetched_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
