"""Rules about procedures: upsert, CSV loading, and resolving the codes records send.

Records name a procedure by its national code (``1.001022``) or by a local variant of it
(``1.001022.000.00.00.H01``); both mean the procedure stored under the national form. A code
chiso never saw is learned from the record, unverified and without a limit, rather than
refusing the record: the record's appointment (NgayHenTra) is then its deadline, until an
operator sets the limit.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import NotFound, Unprocessable, validation_errors
from app.core.params import CODE_PATTERN
from app.core.principal import Principal
from app.procedures import repository
from app.procedures.models import LimitUnit, Procedure
from app.procedures.schemas import (
    NAME_MAX,
    PROCEDURE_CODE_PATTERN,
    ProcedureIn,
    ProcedureOut,
    ProcedureRecord,
)

logger = logging.getLogger("chiso.procedures")

SAMPLE_CSV = Path(__file__).parent / "reference" / "sample-procedures.csv"
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}

# National form: one digit, a dot, six digits; a local variant adds dot-separated parts.
_NATIONAL = re.compile(r"^(\d\.\d{6})(\..+)?$")
_SENDABLE = re.compile(CODE_PATTERN)  # what an event may carry as procedure_code
_STORABLE = re.compile(PROCEDURE_CODE_PATTERN)  # what /v1/procedures/{code} can address
_FIELD_CODE_MAX = 64

# How the portal names a limit's unit (LayThuTuc's DONVITHOIHAN).
PORTAL_LIMIT_UNITS = {
    LimitUnit.WORKING_DAYS: "Ngày làm việc",
    LimitUnit.WORKING_HOURS: "Giờ làm việc",
    LimitUnit.CALENDAR_DAYS: "Ngày",
    LimitUnit.MONTHS: "Tháng",
}


@dataclass(frozen=True, slots=True)
class ProcedureSeen:
    """A procedure as one record names it: MaTTHC as sent, TenTTHC, MaLinhVuc, TenLinhVuc."""

    code: str
    name: str
    field_code: str
    field_name: str


def national_code(code: str) -> str:
    """``1.001022.000.00.00.H01`` → ``1.001022``; a code of another shape stays as it is."""
    match = _NATIONAL.match(code)
    return match.group(1) if match else code


def _text(value: str | None, limit: int) -> str | None:
    cleaned = (value or "").strip()
    return cleaned[:limit] if cleaned else None


def _learnable(seen: ProcedureSeen) -> repository.Learnable | None:
    """What chiso would store for ``seen``; None when its code cannot name a procedure."""
    national = national_code(seen.code)
    if not _SENDABLE.match(seen.code) or not _STORABLE.match(national):
        return None
    field_code = _text(seen.field_code, _FIELD_CODE_MAX + 1)
    return repository.Learnable(
        raw=seen.code,
        national=national,
        name=_text(seen.name, NAME_MAX) or national,
        # A longer "code" is not one chiso could filter by; the field's name still says it.
        field_code=field_code if field_code and len(field_code) <= _FIELD_CODE_MAX else None,
        field_name=_text(seen.field_name, NAME_MAX),
    )


async def resolve_or_learn(session: AsyncSession, seen: Sequence[ProcedureSeen]) -> dict[str, str]:
    """Raw MaTTHC → the code of the procedure it means, learning the procedures never seen.

    An existing procedure is found by the national form, else by the code as sent; none →
    one is learned (unverified, no limit) from the first record naming it. Safe under
    concurrent learners (one row each). A code that cannot name a procedure is left out of
    the answer: the caller refuses its record. One statement for the whole batch.
    """
    firsts: dict[str, repository.Learnable] = {}
    for item in seen:
        if item.code not in firsts and (learnable := _learnable(item)) is not None:
            firsts[item.code] = learnable
    rows = await repository.resolve_or_learn(session, list(firsts.values()))
    learned = sorted({code for _, code, new in rows if new})
    if learned:
        logger.info("procedures learned from records", extra={"procedures": learned})
    return {raw: code for raw, code, _ in rows}


async def find(session: AsyncSession, code: str) -> Procedure | None:
    """The procedure ``code`` means, with the same rule as records: national form first."""
    return await repository.resolve(session, national_code(code), code)


async def get(session: AsyncSession, code: str) -> Procedure:
    """The procedure stored under ``code``, else the one a record naming ``code`` would use (a
    local variant's national procedure): what was PUT at an address is read back there."""
    procedure = await repository.get(session, code) or await find(session, code)
    if procedure is None:
        raise NotFound(f"No procedure with code {code!r}.")
    return procedure


def _portal_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


async def portal_procedure(session: AsyncSession, ma_tthc: str) -> dict[str, Any] | None:
    """LayThuTuc: the procedure ``ma_tthc`` means, in the portal's shape; None when unknown.

    A learned procedure not yet verified has no limit: THOIHANGIAIQUYET and DONVITHOIHAN are
    null.
    """
    procedure = await find(session, ma_tthc)
    if procedure is None:
        return None
    limit_unit = LimitUnit(procedure.limit_unit) if procedure.limit_unit else None
    return {
        "MATTHC": procedure.code,
        "TENTTHC": procedure.name,
        "LINHVUCTHUCHIEN": [
            {"MALINHVUC": procedure.field_code, "TENLINHVUC": procedure.field_name}
        ],
        "THOIHANGIAIQUYET": (
            _portal_number(procedure.limit_value) if procedure.limit_value is not None else None
        ),
        "DONVITHOIHAN": PORTAL_LIMIT_UNITS[limit_unit] if limit_unit else None,
    }


async def _store(session: AsyncSession, records: Sequence[ProcedureRecord]) -> dict[str, bool]:
    """Upsert, and queue for derivation the dossiers a change concerns, so that nothing derived
    from the old procedure stays: the open dossiers of a procedure whose limit changed (their
    deadlines follow it without waiting for their next event). Every dossier of one whose
    paper result or fees changed is queued by the database itself (migration 0023, whoever
    writes the procedure): the record-based counts read both, so each period such a dossier
    counts in is rescored, a closed one recording an amendment."""
    before = await repository.rules_of(session, [r.code for r in records])
    changed = await repository.upsert(session, records)
    stored = [r for r in records if r.code in changed and r.code in before]
    counted = [r.code for r in stored if before[r.code].counted != (r.paper_result, r.has_fees)]
    limits = [
        r.code
        for r in stored
        if r.code not in counted and before[r.code].limit != (r.limit_value, str(r.limit_unit))
    ]
    queued = await repository.queue_open_dossiers(session, limits)
    if queued or counted:
        logger.info(
            "procedures changed: their dossiers queued for derivation",
            extra={"limits": limits, "counted": counted, "open_dossiers": queued},
        )
    return changed


async def upsert_procedure(
    session: AsyncSession, code: str, data: ProcedureIn, by: Principal | str = "cli"
) -> tuple[ProcedureOut, bool]:
    """Create or replace the procedure ``code`` exactly (no variant resolution): the operator
    vouches for it, so it becomes verified."""
    existing = await repository.get(session, code)
    before = ProcedureOut.model_validate(existing) if existing is not None else None
    if existing is not None:
        session.expunge(existing)  # the upsert changes the row behind the ORM's back
    changed = await _store(session, [ProcedureRecord(code=code, **data.model_dump())])
    after = ProcedureOut.model_validate(await repository.get(session, code))
    if code in changed:
        await audit.record(session, by, "procedure.upsert", code, before=before, after=after)
    return after, changed.get(code, False)


# Flag columns of the CSV and their value when the column is absent or the cell empty.
_CSV_FLAGS = {"has_fees": False, "full_online": False, "paper_result": True, "for_citizens": True}


def parse_procedures_csv(text: str) -> list[ProcedureRecord]:
    """Columns: ``code,name,field_code,limit_value,limit_unit,has_fees,full_online``, and
    optionally ``field_name``, ``paper_result`` and ``for_citizens`` (default true)."""
    records: list[ProcedureRecord] = []
    errors: list[dict[str, Any]] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        cleaned: dict[str, Any] = {k.strip(): (v.strip() or None) for k, v in row.items() if k}
        for flag, default in _CSV_FLAGS.items():
            raw = cleaned.get(flag)
            cleaned[flag] = _BOOL.get(raw.lower(), raw) if isinstance(raw, str) else default
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
    return await _store(session, parse_procedures_csv(text))
