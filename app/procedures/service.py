"""Rules about procedures: upsert and CSV loading."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.auth import Principal
from app.core.errors import NotFound, Unprocessable, validation_errors
from app.procedures import repository
from app.procedures.models import Procedure
from app.procedures.schemas import ProcedureIn, ProcedureOut, ProcedureRecord

SAMPLE_CSV = Path(__file__).parent / "reference" / "sample-procedures.csv"
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


async def get(session: AsyncSession, code: str) -> Procedure:
    procedure = await repository.get(session, code)
    if procedure is None:
        raise NotFound(f"No procedure with code {code!r}.")
    return procedure


async def upsert_procedure(
    session: AsyncSession, code: str, data: ProcedureIn, by: Principal | str = "cli"
) -> tuple[ProcedureOut, bool]:
    existing = await repository.get(session, code)
    before = ProcedureOut.model_validate(existing) if existing is not None else None
    if existing is not None:
        session.expunge(existing)  # the upsert changes the row behind the ORM's back
    changed = await repository.upsert(session, [ProcedureRecord(code=code, **data.model_dump())])
    after = ProcedureOut.model_validate(await get(session, code))
    if code in changed:
        await audit.record(session, by, "procedure.upsert", code, before=before, after=after)
    return after, changed.get(code, False)


def parse_procedures_csv(text: str) -> list[ProcedureRecord]:
    """Columns: ``code,name,field_code,limit_value,limit_unit,has_fees,full_online``."""
    records: list[ProcedureRecord] = []
    errors: list[dict[str, Any]] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        cleaned: dict[str, Any] = {k.strip(): (v.strip() or None) for k, v in row.items() if k}
        for flag in ("has_fees", "full_online"):
            raw = cleaned.get(flag)
            cleaned[flag] = _BOOL.get(raw.lower(), raw) if isinstance(raw, str) else False
        try:
            records.append(ProcedureRecord.model_validate(cleaned))
        except ValidationError as exc:
            errors.extend(
                {**e, "detail": f"line {line}: {e['detail']}"}
                for e in validation_errors(exc.errors())
            )
    if errors:
        raise Unprocessable(errors[0]["detail"], errors=errors)
    return records


async def load_procedures_csv(session: AsyncSession, text: str) -> dict[str, bool]:
    return await repository.upsert(session, parse_procedures_csv(text))
