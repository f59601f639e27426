"""Score and ranking snapshots, period states (open / closed, revisions) and amendments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

_TS = DateTime(timezone=True)


class PeriodState(Base):
    """Whether a period is still moving (open) or published (closed), and its revision."""

    __tablename__ = "period_states"

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="open")
    revision: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # Bumped at every refresh: the cheap "has anything changed" check behind every ETag.
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    refreshed_at: Mapped[datetime | None] = mapped_column(_TS)
    closed_at: Mapped[datetime | None] = mapped_column(_TS)
    closed_by: Mapped[str | None] = mapped_column(Text)


class ScoreSnapshot(Base):
    """A unit's computed score for a period (and revision), with its national rank."""

    __tablename__ = "score_snapshots"

    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    catalog_version: Mapped[str] = mapped_column(String(64), nullable=False)
    total: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    grade: Mapped[str | None] = mapped_column(String(32))
    completeness: Mapped[Decimal] = mapped_column(Numeric(5, 4), nullable=False)
    groups: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # JSON text (not jsonb): written and read whole, never queried into (migration 0021).
    metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    rank: Mapped[int | None] = mapped_column(Integer)
    ranked_of: Mapped[int | None] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_score_snapshots_period_revision", "period", "revision"),)


class RankingSnapshot(Base):
    """A ranking response, rendered once per refresh and served as is (with its ETag)."""

    __tablename__ = "ranking_snapshots"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    etag: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_ranking_snapshots_period", "period"),)


class DirtyPeriod(Base):
    """Periods whose inputs changed since their last refresh (the worker debounces them)."""

    __tablename__ = "score_dirty_periods"

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())


class PeriodAmendment(Base):
    """Input that arrived for a closed period: stored, shown, applied only by a re-opening."""

    __tablename__ = "period_amendments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_period_amendments_period", "period"),)


class RecordCount(Base):
    """A change to the record-based counts of one unit's dossiers received in one local month
    (migration 0023): appended by the database as dossiers are written, summed by a refresh
    (which compacts its months to one row per unit). The columns are
    :data:`app.scores.repository.RECORD_COUNTS`."""

    __tablename__ = "record_counts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(64), nullable=False)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    received: Mapped[int] = mapped_column(Integer, nullable=False)
    online: Mapped[int] = mapped_column(Integer, nullable=False)
    charged: Mapped[int] = mapped_column(Integer, nullable=False)
    paid_online: Mapped[int] = mapped_column(Integer, nullable=False)
    paper_result: Mapped[int] = mapped_column(Integer, nullable=False)
    electronic_result: Mapped[int] = mapped_column(Integer, nullable=False)
    digitised: Mapped[int] = mapped_column(Integer, nullable=False)
    reused: Mapped[int] = mapped_column(Integer, nullable=False)
    linked_to_store: Mapped[int] = mapped_column(Integer, nullable=False)
    population_data: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (Index("ix_record_counts_month", "month"),)


class RecordCountZone(Base):
    """The time zone whose local months ``record_counts`` uses (one row; none: no counts kept
    until a refresh rebuilds them)."""

    __tablename__ = "record_count_zone"

    timezone: Mapped[str] = mapped_column(String(64), primary_key=True)
