"""The ``indicator_values`` table: every submitted numerator/denominator, one row per revision.

Rows are never updated: a resubmission with other values adds the next revision, so who said
what and when stays readable. The latest revision of a (unit, period, metric) is the one scored.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

# The text of a period must match its kind (see app/indicators/periods.py).
PERIOD_MATCHES_KIND = (
    "CASE period_kind"
    " WHEN 'month' THEN period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'"
    " WHEN 'quarter' THEN period ~ '^[0-9]{4}-Q[1-4]$'"
    " WHEN 'year' THEN period ~ '^[0-9]{4}$'"
    " ELSE false END"
)


class IndicatorValue(Base):
    __tablename__ = "indicator_values"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", onupdate="CASCADE"), nullable=False
    )
    period: Mapped[str] = mapped_column(String(7), nullable=False)
    period_kind: Mapped[str] = mapped_column(String(8), nullable=False)
    metric_code: Mapped[str] = mapped_column(String(64), nullable=False)
    numerator: Mapped[int] = mapped_column(BigInteger, nullable=False)
    denominator: Mapped[int] = mapped_column(BigInteger, nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    submitted_by: Mapped[str] = mapped_column(Text, nullable=False)
    submitted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    key_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("api_keys.id"), nullable=True
    )
    # Made with the admin scope: for a record-fed metric, only such a value overrides.
    admin_scope: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )

    __table_args__ = (
        CheckConstraint("numerator >= 0", name="numerator_not_negative"),
        CheckConstraint("denominator >= 0", name="denominator_not_negative"),
        CheckConstraint("revision >= 1", name="revision_positive"),
        CheckConstraint(PERIOD_MATCHES_KIND, name="period_matches_kind"),
    )


# One index is both the uniqueness rule and the "latest revision per unit, period and metric"
# lookup: DISTINCT ON (unit_code, period, metric_code) ... ORDER BY ..., revision DESC reads it
# in index order.
Index(
    "uq_indicator_values_unit_code_period_metric_code_revision",
    IndicatorValue.unit_code,
    IndicatorValue.period,
    IndicatorValue.metric_code,
    IndicatorValue.revision.desc(),
    unique=True,
)
