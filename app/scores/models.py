"""Score and ranking snapshots, period states (open / closed, revisions) and amendments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
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


# The record-based counts, in the order of their bits in ``dossiers.record_mask`` (bit i: the
# dossier meets the i-th condition) and of the columns of ``record_counts``. The conditions
# are the database's ``chiso_record_mask`` (migration 0023), over the dossier, its facts'
# flags and its procedure; docs/INDEX.md, "Computed from the records", states each rule.
RECORD_COUNTS = (
    "received",  # counted (not withdrawn before acceptance), with a receipt time
    "online",  # KenhThucHien 2, with an electronic result where a paper one is due
    "charged",  # of a procedure with fees, not every fee stated as 0
    "paid_online",  # … paid online (DuocThanhToanTrucTuyen 1 or 2; else as its events said)
    "paper_result",  # of a procedure that must return a paper result
    "electronic_result",  # … with a result file synced
    "digitised",  # a paper with a file, and an electronic result where one is due
    "reused",  # HoSoCoThanhPhanSoHoa as stated, else as its events said, else a digitised paper
    "linked_to_store",  # a paper from the citizen's store, or a result synced to it
    "population_data",  # VNeID, a paper from the store, or the population database
)
# A change to the record-based counts of one unit's dossiers received in one local month
# (migration 0023): appended by the database as dossiers are written, summed by a refresh
# (which compacts its months to one row per unit). No primary key: rows are only ever
# appended, read by month and compacted, and a key would be one more index write per row for
# every writer.
record_counts = Table(
    "record_counts",
    Base.metadata,
    Column("unit_code", String(64), nullable=False),
    Column("month", Date, nullable=False),
    *(Column(name, Integer, nullable=False) for name in RECORD_COUNTS),
    Index("ix_record_counts_month", "month"),
)


# Steps of indicator 2.1's counts per unit and local month (migration 0024): a unit's counts
# for a month are the sums of its steps in that month and every month before. A dossier is in
# the denominator from the month it was received in to the one it ended in, and in the
# numerator while pending and within time at a month's end and in the month it ended in early
# or on time: runs of months, each a step up in its first month and a step down after its
# last. Appended by the database with ``record_counts``, compacted alike.
on_time_steps = Table(
    "on_time_steps",
    Base.metadata,
    Column("unit_code", String(64), nullable=False),
    Column("month", Date, nullable=False),
    Column("denominator", Integer, nullable=False),
    Column("numerator", Integer, nullable=False),
    Index("ix_on_time_steps_month", "month"),
)


class KeptCountBasis(Base):
    """What ``record_counts`` and ``on_time_steps`` were kept under (one row; none: nothing
    kept until a refresh rebuilds them): the time zone of their local months and the
    supplement-request limit past which a pending dossier is overdue."""

    __tablename__ = "kept_count_basis"

    timezone: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_supplement_requests: Mapped[int] = mapped_column(Integer, primary_key=True)
