"""The ``procedures`` table: a procedure's code (MaTTHC), field and processing limit."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.calendar.workdays import LimitUnit
from app.core.database import Base, Timestamped

__all__ = ["LimitUnit", "Procedure"]


class Procedure(Timestamped, Base):
    __tablename__ = "procedures"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    field_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    limit_value: Mapped[Decimal] = mapped_column(Numeric(8, 2), nullable=False)
    limit_unit: Mapped[str] = mapped_column(String(16), nullable=False)
    has_fees: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    full_online: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # None: not stated; False: served in person only (online dossiers for it get flagged).
    online_allowed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    __table_args__ = (
        CheckConstraint("limit_value > 0", name="limit_positive"),
        CheckConstraint(
            "limit_unit IN ('working_days','working_hours','calendar_days','months')",
            name="limit_unit_known",
        ),
        Index("ix_procedures_field_code_code", "field_code", "code"),
    )
