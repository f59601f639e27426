"""Dossier tables: the append-only event history, the state derived from it, and the index
facts producers stated."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

_TS = DateTime(timezone=True)


class DossierEvent(Base):
    """Every status change ever posted, once per dossier and ``event_id``.

    Clients' events are never changed; an event chiso read off a portal snapshot is replaced
    when the snapshot is re-sent with other values (its id is chiso's, not the client's).
    """

    __tablename__ = "dossier_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    dossier_code: Mapped[str] = mapped_column(String(64), nullable=False)
    # No foreign keys: the ingest statement checks units and procedures itself (per item).
    unit_code: Mapped[str] = mapped_column(String(64), nullable=False)
    procedure_code: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    channel: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    due_at: Mapped[datetime | None] = mapped_column(_TS)
    received_at: Mapped[datetime | None] = mapped_column(_TS)
    note: Mapped[str | None] = mapped_column(Text)
    supplement_supplied_at: Mapped[datetime | None] = mapped_column(_TS)
    supplement_new_due_at: Mapped[datetime | None] = mapped_column(_TS)
    fee_paid_at: Mapped[datetime | None] = mapped_column(_TS)
    apology_issued_at: Mapped[datetime | None] = mapped_column(_TS)
    apology_new_due_at: Mapped[datetime | None] = mapped_column(_TS)
    applicant_kind: Mapped[int | None] = mapped_column(SmallInteger)
    paid_online: Mapped[bool | None] = mapped_column(Boolean)
    has_digitized_parts: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16), nullable=False, server_default="api")
    # A time chiso inferred (a terminal status without its date): kept as first inferred.
    time_inferred: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    # The API key that posted it (null for the admin token).
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    recorded_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("dossier_code", "event_id"),
        CheckConstraint("status BETWEEN 1 AND 10", name="status_known"),
        CheckConstraint("channel BETWEEN 1 AND 3", name="channel_known"),
        Index("ix_dossier_events_dossier_code_occurred_at", "dossier_code", "occurred_at"),
        # Insertion order: integrity rules scan recent events through a tiny BRIN index.
        Index("ix_dossier_events_recorded_at_brin", "recorded_at", postgresql_using="brin"),
    )


class DossierOwner(Base):
    """The unit a dossier belongs to, fixed when it is first seen; every write and read of
    the dossier is checked against it, whatever unit an event names."""

    __tablename__ = "dossier_owners"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())


class DerivationCheck(Base):
    """Watermark of the periodic check that re-queues dossiers whose state lags its history."""

    __tablename__ = "derivation_checks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    checked_through: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    checked_at: Mapped[datetime | None] = mapped_column(_TS)
    requeued: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class DossierBacklog(Base):
    """Dossiers with events not yet reflected in their state; drained by the worker."""

    __tablename__ = "dossier_backlog"

    dossier_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(
        _TS, nullable=False, server_default=func.now(), index=True
    )


class Dossier(Base):
    """The current state of one dossier, always re-derived from its whole event history.

    Stored with a fill factor of 85 (migration 0019): a re-derivation that changes no indexed
    column stays on its page (a HOT update) and writes no index.
    """

    __tablename__ = "dossiers"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign keys: the owner and the procedure were checked when the events were stored.
    unit_code: Mapped[str] = mapped_column(String(64), nullable=False)
    procedure_code: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    channel: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    received_at: Mapped[datetime | None] = mapped_column(_TS)
    base_due_at: Mapped[datetime | None] = mapped_column(_TS)
    due_at: Mapped[datetime | None] = mapped_column(_TS)
    end_at: Mapped[datetime | None] = mapped_column(_TS)
    end_status: Mapped[int | None] = mapped_column(SmallInteger)
    outcome: Mapped[str | None] = mapped_column(String(16))
    counted: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    clock_stopped_at: Mapped[datetime | None] = mapped_column(_TS)
    # When the dossier turns (or turned) overdue, and when the sweep flagged it; due-soon alike.
    overdue_at: Mapped[datetime | None] = mapped_column(_TS)
    overdue_since: Mapped[datetime | None] = mapped_column(_TS)
    due_soon_since: Mapped[datetime | None] = mapped_column(_TS)
    supplement_requests: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, server_default="0"
    )
    paused_seconds: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    pauses: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    apology_issued_at: Mapped[datetime | None] = mapped_column(_TS)
    apology_new_due_at: Mapped[datetime | None] = mapped_column(_TS)
    anomalies: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    applicant_kind: Mapped[int | None] = mapped_column(SmallInteger)
    paid_online: Mapped[bool | None] = mapped_column(Boolean)
    has_digitized_parts: Mapped[bool | None] = mapped_column(Boolean)
    first_event_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    last_event_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    event_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # The newest event (dossier_events.id) this state was derived from.
    derived_through: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    # What the record-based counts read of the dossier's facts, as flags (NULL: no facts),
    # derived with the rest from the facts kept (migration 0022; the bits are
    # app.scores.repository.RECORD_FACTS).
    record_facts: Mapped[int | None] = mapped_column(SmallInteger)
    # Which record-based conditions the dossier meets (bit i: the i-th of
    # app.scores.models.RECORD_COUNTS; NULL: it does not count), by the database's
    # chiso_record_mask, written with the rest of the state (migration 0023).
    record_mask: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        Index("ix_dossiers_unit_code_code", "unit_code", "code"),
        # Overdue and due-soon lists: open, counted dossiers of a unit by due time.
        Index(
            "ix_dossiers_open_unit_code_due_at",
            "unit_code",
            "due_at",
            postgresql_where=text("end_at IS NULL AND counted"),
        ),
        Index("ix_dossiers_unit_code_received_at", "unit_code", "received_at"),
        # The sweep reads only what is about to change: open dossiers not yet flagged.
        Index(
            "ix_dossiers_sweep_overdue_at",
            "overdue_at",
            postgresql_where=text("end_at IS NULL AND overdue_since IS NULL"),
        ),
        Index(
            "ix_dossiers_sweep_due_at",
            "due_at",
            postgresql_where=text("end_at IS NULL AND due_soon_since IS NULL"),
        ),
        Index("ix_dossiers_unit_code_end_at", "unit_code", "end_at"),
    )


class StoredDossierFacts(Base):
    """The index facts of one dossier, as its latest record states them (see
    :class:`app.dossiers.facts.DossierFacts`; NULL: no record said). No personal data."""

    __tablename__ = "dossier_facts"

    dossier_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    papers_total: Mapped[int | None] = mapped_column(Integer)
    papers_with_file: Mapped[int | None] = mapped_column(Integer)
    papers_digitised: Mapped[int | None] = mapped_column(Integer)
    papers_reused: Mapped[int | None] = mapped_column(Integer)
    papers_from_national_store: Mapped[int | None] = mapped_column(Integer)
    fees_count: Mapped[int | None] = mapped_column(Integer)
    fees_total: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    fees_all_zero: Mapped[bool | None] = mapped_column(Boolean)
    results_total: Mapped[int | None] = mapped_column(Integer)
    results_with_file: Mapped[int | None] = mapped_column(Integer)
    databases: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    vneid_verified: Mapped[bool | None] = mapped_column(Boolean)
    has_digitised_parts: Mapped[bool | None] = mapped_column(Boolean)
    submitted_where: Mapped[str | None] = mapped_column(String(255))
    submitted_at: Mapped[datetime | None] = mapped_column(_TS)
    refused_at: Mapped[datetime | None] = mapped_column(_TS)
    payment_code: Mapped[str | None] = mapped_column(String(64))
    result_return: Mapped[str | None] = mapped_column(String(64))
    applicant_kind: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
