"""Portal sync state per source, quarantined records, official index results and the sessions
of one-stop systems logged in under the portal protocol."""

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
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
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


class PortalUnmapped(Base):
    """A well-formed record whose unit nothing resolves yet, kept (minimised) until the unknown
    identifier is mapped to a unit, then released through ingestion as its sender's key.

    Apart from ``portal_quarantine``, which keeps malformed records raw for a human: these wait
    for a mapping, are released by the worker, and are keyed by (MaHoSo, identifier) so that a
    re-sent record replaces the kept one.
    """

    __tablename__ = "portal_unmapped"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dossier_code: Mapped[str] = mapped_column(String(128), nullable=False)
    identifier: Mapped[str] = mapped_column(String(64), nullable=False)
    # "push" for records posted to chiso, else the name of the sync source that pulled it.
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    record: Mapped[Any] = mapped_column(JSONB, nullable=False)
    madonvi: Mapped[str | None] = mapped_column(Text)
    is_updating: Mapped[bool | None] = mapped_column(Boolean)
    # Who posted it: its key (the release acts as that key, within its subtree, and not at all
    # once it is revoked), or for a caller without a key (the admin token, a sync source) its
    # name and the unit it was bound to.
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("api_keys.id"))
    posted_by: Mapped[str] = mapped_column(Text, nullable=False)
    posted_within: Mapped[str | None] = mapped_column(String(64))
    # Why a release could not ingest it (null: waiting for its identifier to be mapped).
    reason: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    times_seen: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __table_args__ = (
        UniqueConstraint("dossier_code", "identifier"),
        Index("ix_portal_unmapped_identifier_id", "identifier", "id"),
    )


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


class PortalSession(Base):
    """A one-stop system's login under the portal protocol (``POST /dvcqg/login``).

    Only the SHA-256 digest of the token is stored. The session stands for its API key: each
    use joins ``api_keys``, so a revoked key's sessions are refused at once.
    """

    __tablename__ = "portal_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    key_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False
    )
    username: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    last_used_at: Mapped[datetime] = mapped_column(_TS, nullable=False)

    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        Index("ix_portal_sessions_key_id_expires_at", "key_id", "expires_at"),
    )
