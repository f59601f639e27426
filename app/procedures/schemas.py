"""Wire shapes of procedures."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.procedures.models import LimitUnit

PROCEDURE_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ProcedureCode = Annotated[str, Field(pattern=PROCEDURE_CODE_PATTERN, examples=["1.001193"])]


class ProcedureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=1000)]
    field_code: Annotated[str | None, Field(max_length=64)] = None
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
    limit_value: Decimal
    limit_unit: LimitUnit
    has_fees: bool
    full_online: bool
    online_allowed: bool | None
