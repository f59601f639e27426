"""The ``procedures`` table: a procedure's code (MaTTHC), field and processing limit.

A procedure is either vouched for by an operator (``verified``: PUT or the CSV catalog, always
with a limit) or learned from a portal record that named a code chiso did not know
(``verified = false``, ``learned_at`` set, no limit until an operator sets one).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, DateTime, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.calendar.workdays import LimitUnit
from app.core.database import Base, Timestamped

__all__ = ["LimitUnit", "Procedure"]


class Procedure(Timestamped, Base):
    __tablename__ = "procedures"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    field_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    field_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    # None only while a learned procedure waits for an operator (then the record's NgayHenTra
    # is its dossiers' deadline).
    limit_value: Mapped[Decimal | None] = mapped_column(Numeric(8, 2), nullable=True)
    limit_unit: Mapped[str | None] = mapped_column(String(16), nullable=True)
    has_fees: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    full_online: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # None: not stated; False: served in person only (online dossiers for it get flagged).
    online_allowed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Must return a paper result (a licence, a certificate): indicators 3.3, 4.1 and 4.2 then
    # ask each dossier for an electronic result. Default true, the common case.
    paper_result: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=text("true")
    )
    # Applicants are citizens (indicator 4.5's procedures). Default true.
    for_citizens: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=text("true")
    )
    verified: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=text("true")
    )
    learned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        CheckConstraint("limit_value > 0", name="limit_positive"),
        CheckConstraint(
            "limit_unit IN ('working_days','working_hours','calendar_days','months')",
            name="limit_unit_known",
        ),
        CheckConstraint("verified = false OR limit_value IS NOT NULL", name="limit_stated"),
        CheckConstraint("(limit_value IS NULL) = (limit_unit IS NULL)", name="limit_complete"),
        Index("ix_procedures_field_code_code", "field_code", "code"),
        Index("ix_procedures_unverified_code", "code", postgresql_where=text("NOT verified")),
    )
