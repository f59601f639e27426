"""Rules about units: reference checks, no cycles, identifiers, CSV loading, unit-scoped access."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core import events
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable, validation_errors
from app.core.principal import Principal
from app.units import repository
from app.units.models import Unit
from app.units.schemas import UnitDetail, UnitIn, UnitOut, UnitRecord, UnitRef

# What a PUT replaces whether or not the body names it (left out: none); ``identifier`` is
# replaced only when named, so tools that manage the tree do not erase identifiers.
_ALWAYS_REPLACED = set(UnitIn.model_fields) - {"identifier"}

REFERENCE_DIR = Path(__file__).parent / "reference"
PROVINCES_CSV = REFERENCE_DIR / "provinces-2026.csv"


def no_such_unit(code: str) -> NotFound:
    """The one 404 every route gives for an unknown unit."""
    return NotFound(f"No unit with code {code!r}.")


async def require_unit(session: AsyncSession, code: str) -> Unit:
    """The unit ``code``, or 404 with the one text every route gives for an unknown unit."""
    unit = await repository.get(session, code)
    if unit is None:
        raise no_such_unit(code)
    return unit


def subtree(root: str) -> Select[tuple[str]]:
    """The codes of ``root`` and its descendants, as a subquery a caller hands to the lists of
    floors below the units (the audit log), which cannot build it themselves."""
    return repository.subtree_codes(root)


def reach(principal: Principal) -> Select[tuple[str]] | None:
    """The units a key bound to a unit reaches (that unit's subtree), as :func:`subtree`;
    ``None`` for a key bound to no unit (or the admin token): it reaches every unit."""
    return None if principal.unit_code is None else subtree(principal.unit_code)


async def get_detail(session: AsyncSession, code: str) -> UnitDetail:
    unit = await require_unit(session, code)
    parents = await repository.ancestors(session, code)
    return UnitDetail(
        **UnitOut.model_validate(unit).model_dump(),
        parents=[UnitRef(code=p.code, name=p.name, level=p.level) for p in parents],
        children_count=await repository.children_count(session, code),
    )


async def list_units(
    session: AsyncSession,
    *,
    level: str | None,
    parent_code: str | None,
    valid_at: date | None,
    after: str | None,
    limit: int,
    identifier: str | None = None,
) -> list[Unit]:
    return await repository.list_units(
        session, level=level, parent_code=parent_code, valid_at=valid_at, after=after,
        limit=limit, identifier=identifier,
    )  # fmt: skip


async def resolve_units(session: AsyncSession, tokens: Collection[str]) -> dict[str, str]:
    """The unit each token names: ``{token: unit code}``, one query for all of them.

    A token is what another system calls a unit (a portal record's ``madonvi``,
    ``MaDinhDanhDV`` or ``MaHoSo`` prefix): its electronic identifier first, else its chiso
    code. Tokens naming no unit are absent. No token can name two units: an identifier never
    equals another unit's code (see :func:`upsert_units`).
    """
    return await repository.resolve(session, tokens)


async def _check_references(session: AsyncSession, records: Sequence[UnitRecord]) -> None:
    incoming = {r.code for r in records}
    referenced: dict[str, list[tuple[int, str]]] = {}
    for index, record in enumerate(records):
        for field in ("parent_code", "successor_code"):
            target = getattr(record, field)
            if target is not None and target not in incoming:
                referenced.setdefault(target, []).append((index, field))
    known = await repository.existing_codes(session, list(referenced))
    own_parent = [
        {"pointer": f"#/{index}/parent_code" if len(records) > 1 else "#/parent_code",
         "detail": "a unit cannot be its own parent"}
        for index, record in enumerate(records) if record.parent_code == record.code
    ]  # fmt: skip
    errors = own_parent + [
        {"pointer": f"#/{index}/{field}" if len(records) > 1 else f"#/{field}",
         "detail": f"unknown unit {code!r}"}
        for code, places in referenced.items() if code not in known
        for index, field in places
    ]  # fmt: skip
    if errors:
        raise Unprocessable(errors[0]["detail"], errors=errors)


@dataclass(frozen=True)
class UnitsLoaded:
    changed: dict[str, bool]  # {code: created} of the units created or changed
    released: list[str]  # identifiers or codes whose quarantined records are being released


async def upsert_units(session: AsyncSession, records: Sequence[UnitRecord]) -> dict[str, bool]:
    """Validate and upsert; raises 422 on unknown references, a parent cycle or an identifier
    given twice, 409 on an identifier another unit holds (nothing stored).

    Portal records quarantined under one of the units' identifiers or codes are released:
    a ``release_unmapped`` job per such token is recorded with this change.
    """
    return (await _upsert(session, records)).changed


async def _upsert(session: AsyncSession, records: Sequence[UnitRecord]) -> UnitsLoaded:
    await _check_references(session, records)
    tokens = _tokens(records)
    await repository.lock_tokens(session, tokens)
    await _check_identifiers(session, records)
    try:
        changed = await repository.upsert(session, records)
    except repository.IdentifierTaken:
        # Another transaction committed the identifier after the check: it now names them.
        await _check_identifiers(session, records)
        raise Conflict("Another unit was given one of these identifiers meanwhile.") from None
    cyclic = await repository.codes_in_cycles(session, [r.code for r in records])
    if cyclic:
        await session.rollback()
        raise Unprocessable(
            f"parent_code would make a cycle through {', '.join(cyclic)}",
            errors=[{"pointer": "#/parent_code", "detail": "unit would be its own ancestor"}],
        )
    # Every token, changed or not: putting a unit again is how an operator releases what
    # waits for it, whatever the reason it was not released before. Subscribers (the portal's
    # quarantine) answer the tokens whose waiting records they queued for release.
    answers = await events.publish(session, events.IdentifiersMapped(tokens=frozenset(tokens)))
    released = sorted({token for answer in answers for token in answer})
    return UnitsLoaded(changed=changed, released=released)


def _tokens(records: Sequence[UnitRecord]) -> set[str]:
    """What the records' units may be named by once stored: codes, and identifiers given."""
    return {r.code for r in records} | {r.identifier for r in records if r.identifier}


def _pointer(records: Sequence[UnitRecord], index: int, field: str) -> str:
    return f"#/{index}/{field}" if len(records) > 1 else f"#/{field}"


async def _check_identifiers(session: AsyncSession, records: Sequence[UnitRecord]) -> None:
    """Every token names one unit: an identifier is given once, is held by no other unit, and
    is no other unit's code (nor is a unit's code another unit's identifier), since a record
    naming it could then mean either."""
    given: dict[str, int] = {}  # identifier → the first record giving it
    for index, record in enumerate(records):
        if record.sets_identifier and record.identifier:
            given.setdefault(record.identifier, index)
    codes = {r.code: i for i, r in enumerate(records)}
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        identifier = record.identifier if record.sets_identifier else None
        if not identifier:
            continue
        first = given[identifier]
        if first != index:
            errors.append({
                "pointer": _pointer(records, index, "identifier"),
                "detail": f"identifier {identifier!r} is also given to unit "
                          f"{records[first].code}",
            })  # fmt: skip
        other = codes.get(identifier)
        if other is not None and other != index:
            errors.append({
                "pointer": _pointer(records, index, "identifier"),
                "detail": f"identifier {identifier!r} is the code of unit {identifier}",
            })  # fmt: skip
    if errors:
        raise Unprocessable(errors[0]["detail"], errors=errors)

    holders = await repository.token_holders(session, excluding=codes, tokens=[*given, *codes])
    clashes: list[tuple[str, Unit, dict[str, Any]]] = []
    for holder in holders:
        named = f"unit {holder.code} ({holder.name})"
        if holder.identifier in given:
            index = given[holder.identifier]
            detail = f"identifier {holder.identifier!r} already belongs to {named}"
            clashes.append((detail, holder, {"pointer": _pointer(records, index, "identifier")}))
        if holder.code in given:
            index = given[holder.code]
            detail = (
                f"identifier {holder.code!r} is the code of {named}: records naming it would "
                "mean either unit"
            )
            clashes.append((detail, holder, {"pointer": _pointer(records, index, "identifier")}))
        if holder.identifier in codes:
            index = codes[holder.identifier]
            detail = (
                f"code {holder.identifier!r} is the identifier of {named}: records naming it "
                "would mean either unit"
            )
            clashes.append((detail, holder, {"pointer": _pointer(records, index, "code")}))
    if clashes:
        first_detail, first_holder, _ = clashes[0]
        raise Conflict(
            f"{first_detail[0].upper()}{first_detail[1:]}; change or clear it there first.",
            errors=[{**where, "detail": detail} for detail, _, where in clashes],
            unit_code=first_holder.code,
        )


async def upsert_unit(
    session: AsyncSession, code: str, unit: UnitIn, by: Principal | str = "cli"
) -> tuple[UnitDetail, bool, bool]:
    """The unit as stored, whether it was created, and whether quarantined portal records
    waiting for it are being released (a job was recorded)."""
    existing = await repository.get(session, code)
    if isinstance(by, Principal):
        await _ensure_may_upsert(session, by, code, existing, unit)
    before = UnitOut.model_validate(existing) if existing is not None else None
    if existing is not None:
        session.expunge(existing)  # the upsert changes the row behind the ORM's back
    # Left out of the body, the identifier stays as stored (``null`` clears it).
    fields = unit.model_dump(include=unit.model_fields_set | _ALWAYS_REPLACED)
    loaded = await _upsert(session, [UnitRecord(code=code, **fields)])
    changed = loaded.changed
    detail = await get_detail(session, code)
    if code in changed:
        after = UnitOut.model_validate(detail.model_dump())
        await audit.record(
            session, by, "unit.upsert", code, unit_code=code, before=before, after=after
        )
    return detail, changed.get(code, False), bool(loaded.released)


async def _ensure_may_upsert(
    session: AsyncSession, principal: Principal, code: str, existing: Unit | None, unit: UnitIn
) -> None:
    """A unit-bound admin edits its subtree and keeps it whole: it neither moves a unit out nor
    hangs a new one outside, nor re-parents its own root (that is its parent's business), nor
    names a successor outside (a merger across subtrees is national)."""
    root = principal.unit_code
    if root is None:
        return
    if existing is not None:
        await ensure_admin_over(session, principal, code)
    if code == root:
        if existing is not None and unit.parent_code != existing.parent_code:
            raise Forbidden(
                f"Unit {root} is this key's own root: only an admin bound to no unit may change "
                "its parent.",
                errors=[{"pointer": "#/parent_code",
                         "detail": f"must stay {existing.parent_code!r}"}],
            )  # fmt: skip
    elif unit.parent_code is None:
        raise Forbidden(
            f"This key is limited to unit {root} and its subunits: a unit needs a parent_code "
            "inside that subtree.",
            errors=[{"pointer": "#/parent_code", "detail": f"must lie within {root}"}],
        )
    else:
        await _ensure_reference_within(session, root, unit.parent_code, "parent_code")
    unchanged_successor = existing is not None and unit.successor_code == existing.successor_code
    if unit.successor_code is not None and not unchanged_successor:
        await _ensure_reference_within(session, root, unit.successor_code, "successor_code")


async def _ensure_reference_within(session: AsyncSession, root: str, code: str, field: str) -> None:
    # An unknown unit is left to the reference check (422), which names it as unknown.
    if await repository.get(session, code) is None:
        return
    if not await repository.is_within(session, code, root):
        raise Forbidden(
            f"This key is limited to unit {root} and its subunits: {field} {code!r} lies outside.",
            errors=[{"pointer": f"#/{field}", "detail": f"must lie within {root}"}],
        )


def parse_units_csv(text: str) -> list[UnitRecord]:
    """Columns: ``code,name,level,parent_code,valid_from,valid_to,successor_code,identifier``
    (blank = none).

    A file with only ``code,name`` (like the provinces list) defaults ``level`` to province.
    ``identifier`` is optional: without the column, stored identifiers stay; with it, a blank
    cell clears the unit's identifier.
    """
    reader = csv.DictReader(io.StringIO(text))
    records: list[UnitRecord] = []
    errors: list[dict[str, Any]] = []
    for line, row in enumerate(reader, start=2):
        # A short row leaves its missing cells None.
        cleaned = {k.strip(): ((v or "").strip() or None) for k, v in row.items() if k}
        cleaned.setdefault("level", "province")
        try:
            records.append(UnitRecord.model_validate(cleaned))
        except ValidationError as exc:
            errors.extend(
                {**e, "detail": f"line {line}: {e['detail']}"}
                for e in validation_errors(exc.errors())
            )
    if errors:
        raise Unprocessable(errors[0]["detail"], errors=errors)
    return records


async def load_units_csv(session: AsyncSession, text: str) -> dict[str, bool]:
    return await upsert_units(session, parse_units_csv(text))


async def load_units(session: AsyncSession, text: str) -> UnitsLoaded:
    """A province's units CSV: what changed and which quarantined records it releases."""
    return await _upsert(session, parse_units_csv(text))


async def ensure_in_scope(session: AsyncSession, principal: Principal, unit_code: str) -> None:
    """403 unless the principal is unrestricted or ``unit_code`` lies in its unit's subtree."""
    if principal.unit_code is None:
        return
    if not await repository.is_within(session, unit_code, principal.unit_code):
        raise Forbidden(f"This key is limited to unit {principal.unit_code} and its subunits.")


# --- what an admin may administer -------------------------------------------------------------
# The admin scope is national only on a key bound to no unit (or the admin token). On a key bound
# to a unit it administers that subtree: its units, the keys bound to them, their integrity
# flags, the audit entries about them. Procedures, the calendar, periods and quarantined portal
# records concern every unit, so they stay with unbound admins. Routes state which rule they
# follow through the dependencies in ``app.keys.access``.


def ensure_national_admin(principal: Principal, why: str) -> None:
    """403 for an admin key bound to a unit; ``why`` says what makes the action national."""
    if principal.unit_code is not None:
        raise Forbidden(
            f"This admin key is bound to unit {principal.unit_code}; {why}, so this needs an "
            "admin key bound to no unit or the admin token."
        )


async def ensure_admin_over(
    session: AsyncSession, principal: Principal, unit_code: str | None
) -> None:
    """403 unless ``principal`` may administer ``unit_code`` (``None``: nothing bound to a unit,
    e.g. a key for every unit, which only a national admin may touch)."""
    if unit_code is None:
        ensure_national_admin(principal, "a key bound to no unit acts for every unit")
        return
    await ensure_in_scope(session, principal, unit_code)
