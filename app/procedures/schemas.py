"""Wire shapes of procedures."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    model_validator,
)

from app.core.params import NO_NUL_PATTERN
from app.procedures.models import LimitUnit

PROCEDURE_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ProcedureCode = Annotated[str, Field(pattern=PROCEDURE_CODE_PATTERN, examples=["1.001193"])]
NAME_MAX = 1000

# A time limit above 0, at most 999, with at most two decimals: as a JSON number, or as text
# (what ProcedureOut writes and CSV files hold) spelled plainly, e.g. "3", "0.5", "15.25".
LIMIT_TEXT_PATTERN = (
    r"^0*(?:(?:[1-9][0-9]?|[1-8][0-9]{2}|9[0-8][0-9]|99[0-8])(?:\.[0-9]{1,2})?"
    r"|999(?:\.00?)?|\.(?:0[1-9]|[1-9][0-9]?)|0\.(?:0[1-9]|[1-9][0-9]?))$"
)


WHOLE_LIMIT_TEXT_PATTERN = r"^0*[1-9][0-9]{0,2}(?:\.00?)?$"
WHOLE_UNITS = (LimitUnit.CALENDAR_DAYS, LimitUnit.MONTHS)


def _plain_limit_text(value: object) -> object:
    # Decimal() also reads " 3", "3e0", "1_0" or "+3": text must be the plain spelling above.
    if isinstance(value, str) and re.fullmatch(LIMIT_TEXT_PATTERN, value) is None:
        raise ValueError("a limit is written like 3, 0.5 or 15.25 (above 0, at most 999)")
    return value


LimitValue = Annotated[
    Decimal,
    Field(gt=0, le=999, decimal_places=2),
    BeforeValidator(_plain_limit_text),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 999, "multipleOf": 0.01},
                {"type": "string", "pattern": LIMIT_TEXT_PATTERN},
            ]
        }
    ),
]


class ProcedureIn(BaseModel):
    """What an operator states about a procedure; storing it makes the procedure verified."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # Calendar days and months: a whole number (the schema's way to say it: either
            # the unit counts in working time, or the value is whole).
            "anyOf": [
                {"properties": {"limit_unit": {"enum": ["working_days", "working_hours"]}}},
                {
                    "properties": {
                        "limit_value": {
                            "anyOf": [
                                {"type": "number", "multipleOf": 1},
                                {"type": "string", "pattern": WHOLE_LIMIT_TEXT_PATTERN},
                            ]
                        }
                    }
                },
            ]
        },
    )

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=NO_NUL_PATTERN)]
    field_code: Annotated[str | None, Field(max_length=64, pattern=NO_NUL_PATTERN)] = None
    field_name: Annotated[str | None, Field(max_length=NAME_MAX, pattern=NO_NUL_PATTERN)] = None
    limit_value: LimitValue
    limit_unit: LimitUnit
    has_fees: StrictBool = False
    full_online: StrictBool = False
    # False: in person only (an online dossier for it is an integrity flag); None: not stated.
    online_allowed: StrictBool | None = None
    paper_result: StrictBool = Field(
        default=True,
        description="Must return a paper result: indicators 3.3, 4.1, 4.2 then count a dossier "
        "only with an electronic result",
    )
    for_citizens: StrictBool = Field(
        default=True, description="Applicants are citizens (indicator 4.5's procedures)"
    )

    @model_validator(mode="after")
    def _whole_for_days_and_months(self) -> Self:
        # Calendar days and months are counted whole (deadlines could not be computed).
        if self.limit_unit in WHOLE_UNITS and self.limit_value != self.limit_value.to_integral():
            raise ValueError(f"a limit in {self.limit_unit.value} is a whole number")
        return self


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
    paper_result: bool
    for_citizens: bool
    verified: bool
    learned_at: datetime | None
