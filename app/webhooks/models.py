"""Webhook tables: subscriptions and the log of every delivery made to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

_TS = DateTime(timezone=True)


class Webhook(Base):
    """A URL that receives the notifications of ``kinds`` for a unit and its whole subtree.

    ``secret`` is stored as given: it is the HMAC key deliveries are signed with, so it must
    be readable by the worker (unlike API keys, which are only compared by digest).
    """

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(_TS)

    __table_args__ = (
        CheckConstraint("url ~ '^https?://'", name="url_http"),
        CheckConstraint("cardinality(kinds) > 0", name="kinds_not_empty"),
        Index("ix_webhooks_unit_code", "unit_code"),
    )


class WebhookDelivery(Base):
    """One notification for one webhook, with the outcome of its latest attempt.

    ``(webhook_id, kind, dedupe_key)`` is unique, so a sweep that flags the same dossier
    again (a rerun, a retried job) never notifies a receiver twice.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    unit_code: Mapped[str] = mapped_column(String(64), nullable=False)
    dedupe_key: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(
        _TS, nullable=False, server_default=func.now()
    )
    delivered_at: Mapped[datetime | None] = mapped_column(_TS)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('pending','delivered','failed')", name="status_known"),
        UniqueConstraint("webhook_id", "kind", "dedupe_key"),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )
