"""The ``audit_log`` table: one row per administrative change, written with the change."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class ActorKind(StrEnum):
    """How the actor was authenticated, so a key named "admin" is never taken for the token."""

    admin_token = "admin_token"  # noqa: S105 - the kind's name, not a secret
    api_key = "api_key"
    cli = "cli"  # an operator on the command line (direct database access)
    system = "system"  # chiso's own processes, e.g. a portal sync
    unrecorded = "unrecorded"  # written before chiso recorded the kind (migration 0010)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    actor_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_name: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    # The unit the change is about (a unit, a key's unit, an indicator value's unit); null for
    # national changes (procedures, calendar, periods, unbound keys). A unit-bound admin reads
    # the entries of its subtree only.
    unit_code: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any] = mapped_column(JSONB, nullable=True)
    after: Mapped[Any] = mapped_column(JSONB, nullable=True)

    __table_args__ = (
        CheckConstraint(
            "actor_kind IN ('admin_token','api_key','cli','system','unrecorded')",
            name="actor_kind_known",
        ),
        CheckConstraint(
            "(actor_kind = 'api_key') = (actor_key_id IS NOT NULL)", name="key_id_iff_key"
        ),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_target_id", "target", "id"),
        Index("ix_audit_log_unit_code_id", "unit_code", "id"),
    )
