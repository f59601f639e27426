"""Wire shapes of procedures."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.procedures.models import LimitUnit

PROCEDURE_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ProcedureCode = Annotated[str, Field(pattern=PROCEDURE_CODE_PATTERN, examples=["1.001193"])]
NAME_MAX = 1000


class ProcedureIn(BaseModel):
    """What an operator states about a procedure; storing it makes the procedure verified."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    field_code: Annotated[str | None, Field(max_length=64)] = None
    field_name: Annotated[str | None, Field(max_length=NAME_MAX)] = None
    limit_value: Annotated[Decimal, Field(gt=0, le=999, decimal_places=2)]
    limit_unit: LimitUnit
    has_fees: bool = False
    full_online: bool = False
    # False: in person only (an online dossier for it is an integrity flag); None: not stated.
    online_allowed: bool | None = None


class ProcedureRecord(ProcedureIn):
    code: ProcedureCode


class ProcedureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    field_code: str | None
    field_name: str | None
    # Null only for a procedure learned from a record and not yet verified by an operator.
    limit_value: Decimal | None
    limit_unit: LimitUnit | None
    has_fees: bool
    full_online: bool
    online_allowed: bool | None
    verified: bool
    learned_at: datetime | None
