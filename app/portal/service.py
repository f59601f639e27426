"""Store the portal's records and progress items through the same ingestion path as the JSON API.

A record is read as its producer sent it (``records.py``), its unit resolved by identifier or
code (the ``MaHoSo`` prefix first, then ``madonvi``, then ``MaDonVi``), its procedure resolved
by national code or learned; a record whose unit no one knows yet is kept until its identifier
is mapped. The events then go through :func:`app.dossiers.service.ingest` (ownership,
idempotency, one statement) and the facts that feed the index are kept beside the dossier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.construct import constructed
from app.core.principal import Principal
from app.core.settings import Settings
from app.dossiers import repository as dossiers_repository
from app.dossiers import service as dossiers
from app.dossiers.facts import DossierFacts
from app.dossiers.facts_repository import upsert_facts
from app.dossiers.schemas import Channel
from app.portal import repository
from app.portal.progress import progress_dossier_code, progress_to_events
from app.portal.records import (
    EventFields,
    ParsedRecord,
    PortalRecordError,
    parse_records,
    unique_errors,
)
from app.portal.repository import PUSHED, UnmappedRecord
from app.portal.schemas import PortalRecordResult, PortalSyncResult
from app.procedures.service import ProcedureSeen, resolve_or_learn
from app.units.service import resolve_units

# Ingestion reports an event's fields by their JSON names; say them in the portal's.
_PORTAL_FIELD = {"unit_code": "MaHoSo", "procedure_code": "MaTTHC", "dossier_code": "MaHoSo"}
Outcome = Literal["stored", "updated", "duplicate", "quarantined", "rejected"]


@dataclass
class _Record:
    """One record on its way: parsed, then placed (unit, procedure), then stored."""

    index: int
    code: str | None
    parsed: ParsedRecord | None = None
    errors: list[dict[str, Any]] | None = None
    unit: str | None = None
    unknown_unit: str | None = None
    procedure: str | None = None
    first_event: int = 0  # where its events start in the flat list sent to ingestion


async def ingest_records(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    raw_records: Sequence[Any],
    default_unit: str | None,
    source: str = "portal",
    derive_now: bool = False,
    is_updating: bool | None = None,
) -> PortalSyncResult:
    """Store a batch of records; one result per record, in order. The caller commits."""
    arrived_at = datetime.now(UTC)
    records = [
        _Record(index, _dossier_code(raw_records[index]), parsed, errors)
        for index, parsed, errors in parse_records(list(raw_records), default_unit, arrived_at)
    ]
    await _place_units(session, records, default_unit)
    await _place_procedures(session, records)

    kept = [r for r in records if r.parsed is not None and r.unknown_unit is not None]
    if kept:
        await repository.quarantine_unmapped(
            session,
            [
                UnmappedRecord(
                    dossier_code=r.parsed.dossier_code,  # type: ignore[union-attr]
                    identifier=r.unknown_unit,  # type: ignore[arg-type]
                    record=raw_records[r.index],
                    source=PUSHED if source == "push" else source,
                    principal=principal,
                    madonvi=default_unit,
                    is_updating=is_updating,
                )
                for r in kept
            ],
        )

    # The events of the records placed, as the rows ingestion stores (no event built again:
    # each row is the record's event with its unit and procedure resolved).
    batch = dossiers.Accepted([], [], [], {})
    for record in records:
        parsed = record.parsed
        if parsed is None or record.errors is not None or not record.unit:
            continue
        assert record.procedure is not None
        record.first_event = len(batch.rows)
        _add_rows(batch, settings, parsed.fields, parsed.inferred, record.unit, record.procedure)
    # Derived (with ``derive_now``) once the records' facts are kept: a dossier's state holds
    # the flags its facts give the record-based counts.
    outcome = await dossiers.ingest_accepted(session, settings, principal, batch, source=source)

    items: list[PortalRecordResult] = []
    facts: list[tuple[str, DossierFacts]] = []
    for record in records:
        if record.errors is not None or record.parsed is None:
            items.append(_rejected(record, record.errors or []))
            continue
        if record.unknown_unit is not None:
            items.append(
                constructed(PortalRecordResult, {
                    "index": record.index, "MaHoSo": record.code, "result": "quarantined",
                    "reason": f"đơn vị {record.unknown_unit!r} chưa được khai báo — kept until "
                    f"the identifier {record.unknown_unit!r} is mapped to a unit",
                    "events_stored": 0, "events_duplicate": 0,
                })
            )  # fmt: skip
            continue
        results = outcome.outcomes[
            record.first_event : record.first_event + len(record.parsed.fields)
        ]
        items.append(_stored(record, results))
        if items[-1].result != "rejected":
            facts.append((record.parsed.dossier_code, record.parsed.facts))
    if facts:
        await upsert_facts(session, facts)
    if derive_now:
        await dossiers.derive_inline(
            session, settings, sorted({*outcome.touched, *(code for code, _ in facts)})
        )
    return _summary(items)


async def ingest_progress(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    raw_items: Sequence[Any],
    default_unit: str | None = None,
    source: str = "portal",
    derive_now: bool = False,
) -> PortalSyncResult:
    """Store processing steps (``CapNhatTienDoHoSoMC``) as events of their known dossiers.

    A step's dossier must have been synced first (its unit, procedure and channel come from
    it); the ingest statement checks the key against the dossier's owner as for any event.
    """
    codes = [progress_dossier_code(raw) for raw in raw_items]
    known = await dossiers_repository.basics(session, [c for c in codes if c])
    items: list[PortalRecordResult] = []
    batch = dossiers.Accepted([], [], [], {})
    spans: list[tuple[int, int, list[str]]] = []
    for index, (raw, code) in enumerate(zip(raw_items, codes, strict=True)):
        basics = known.get(code) if code else None
        if code is not None and basics is None:
            items.append(
                _rejected(
                    _Record(index, code),
                    [{"pointer": f"#/{index}/MaHoSo",
                      "detail": "hồ sơ chưa được đồng bộ — the dossier is unknown: sync its "
                                "record (DongBoHoSoMC) first"}],
                )
            )  # fmt: skip
            continue
        unit, procedure, channel = basics if basics else ("", "", 1)
        try:
            parsed = progress_to_events(raw, index, unit, procedure, Channel(channel))
        except PortalRecordError as exc:
            items.append(_rejected(_Record(index, code), exc.errors))
            continue
        spans.append((index, len(batch.rows), parsed.notes))
        _add_rows(batch, settings, parsed.fields, None, unit, procedure)
        place = {"index": index, "MaHoSo": code, "result": "stored", "events_stored": 0,
                 "events_duplicate": 0}  # fmt: skip
        items.append(constructed(PortalRecordResult, place))  # replaced by the result below
    outcome = await dossiers.ingest_accepted(
        session, settings, principal, batch, source=source, derive_now=derive_now
    )
    by_index = {item.index: n for n, item in enumerate(items)}
    for position, (index, start, notes) in enumerate(spans):
        end = spans[position + 1][1] if position + 1 < len(spans) else len(batch.rows)
        record = _Record(index, items[by_index[index]].MaHoSo)
        result = _stored(record, outcome.outcomes[start:end], notes)
        items[by_index[index]] = result
    return _summary(items)


def _add_rows(
    batch: dossiers.Accepted,
    settings: Settings,
    events: Sequence[EventFields],
    inferred: Sequence[bool] | None,
    unit: str,
    procedure: str,
) -> None:
    """Add ``events`` (each one's values, as the readers state them) to ``batch`` as the rows
    ingestion stores (``repository.row_of``), with their unit and procedure as resolved;
    ``inferred``: whose time chiso inferred. A value a reader does not state is NULL."""
    rows, store_notes = batch.rows, settings.store_notes
    for n, e in enumerate(events):
        batch.indexes.append(len(rows))
        get = e.get
        rows.append(
            (len(rows), e["event_id"], e["dossier_code"], unit, procedure, e["status"],
             e["occurred_at"], e["channel"], get("due_at"), get("received_at"),
             get("note") if store_notes else None, get("supplement_supplied_at"),
             get("supplement_new_due_at"), get("fee_paid_at"), get("apology_issued_at"),
             get("apology_new_due_at"), get("applicant_kind"), get("paid_online"),
             get("has_digitized_parts"), bool(inferred[n]) if inferred else False)
        )  # fmt: skip


async def _place_units(
    session: AsyncSession, records: Sequence[_Record], default_unit: str | None
) -> None:
    """Each record's unit: the first of its MaHoSo prefix, ``madonvi`` and ``MaDonVi`` that
    names a unit (by identifier, else by chiso code); none → kept for when it is mapped."""
    tokens: set[str] = set()
    for record in records:
        if record.parsed is not None:
            tokens.update(t for t in _candidates(record.parsed, default_unit) if t)
    found = await resolve_units(session, tokens) if tokens else {}
    for record in records:
        if record.parsed is None:
            continue
        candidates = [t for t in _candidates(record.parsed, default_unit) if t]
        unit = next((found[t] for t in candidates if t in found), None)
        if unit is not None:
            record.unit = unit
        elif candidates:
            record.unknown_unit = candidates[0]
        else:
            detail = "no unit: MaHoSo has no unit prefix and madonvi is empty"
            record.errors = [{"pointer": f"#/{record.index}/MaHoSo", "detail": detail}]


def _candidates(parsed: ParsedRecord, default_unit: str | None) -> list[str | None]:
    return [parsed.unit_token, default_unit, parsed.unit_declared]


async def _place_procedures(session: AsyncSession, records: Sequence[_Record]) -> None:
    placed = [r for r in records if r.parsed is not None and r.unit is not None]
    if not placed:
        return
    seen = {
        r.parsed.procedure.code: ProcedureSeen(  # type: ignore[union-attr]
            code=r.parsed.procedure.code,  # type: ignore[union-attr]
            name=r.parsed.procedure.name or "",  # type: ignore[union-attr]
            field_code=r.parsed.procedure.field_code or "",  # type: ignore[union-attr]
            field_name=r.parsed.procedure.field_name or "",  # type: ignore[union-attr]
        )
        for r in placed
    }
    resolved = await resolve_or_learn(session, list(seen.values()))
    for record in placed:
        assert record.parsed is not None
        code = resolved.get(record.parsed.procedure.code)
        if code is None:
            record.errors = [{"pointer": f"#/{record.index}/MaTTHC",
                              "detail": f"MaTTHC {record.parsed.procedure.code!r} cannot name "
                                        "a procedure"}]  # fmt: skip
        else:
            record.procedure = code


def _stored(
    record: _Record, results: Sequence[dossiers.Outcome], notes: Sequence[str] | None = None
) -> PortalRecordResult:
    """A record's result from its events' results (``(index, event_id, result, errors,
    stored_at)`` each)."""
    refused = [r for r in results if r[2] in ("rejected", "conflict")]
    if refused:
        errors = [
            {"pointer": f"#/{record.index}/{_portal_field(e['pointer'])}", "detail": e["detail"]}
            for r in refused
            for e in r[3] or []
        ]
        return _rejected(record, errors)
    stored = updated = 0
    for r in results:
        if r[2] == "stored":
            stored += 1
        elif r[2] == "updated":
            updated += 1
    result: Outcome = "stored" if stored else "updated" if updated else "duplicate"
    notes = list(notes if notes is not None else record.parsed.notes if record.parsed else [])
    # Built from counted values: no validation needed (10,000 of them in a full call).
    return constructed(PortalRecordResult, {
        "index": record.index, "MaHoSo": record.code, "result": result,
        "reason": "; ".join(notes) or None, "events_stored": stored, "events_updated": updated,
        "events_duplicate": len(results) - stored - updated,
    })  # fmt: skip


def _rejected(record: _Record, errors: Sequence[dict[str, Any]]) -> PortalRecordResult:
    unique = unique_errors(list(errors))
    return PortalRecordResult(
        index=record.index, MaHoSo=record.code, result="rejected",
        reason="; ".join(str(e.get("detail", "")) for e in unique) or "từ chối",
        events_stored=0, events_duplicate=0, errors=unique,
    )  # fmt: skip


def _summary(items: list[PortalRecordResult]) -> PortalSyncResult:
    counts = Counter(item.result for item in items)
    return PortalSyncResult.model_construct(
        stored=counts["stored"], updated=counts["updated"], duplicate=counts["duplicate"],
        quarantined=counts["quarantined"], rejected=counts["rejected"], items=items,
    )  # fmt: skip


def _portal_field(pointer: str) -> str:
    field = pointer.rsplit("/", 1)[-1]
    return _PORTAL_FIELD.get(field, field)


def _dossier_code(raw: Any) -> str | None:
    value = raw.get("MaHoSo") if isinstance(raw, dict) else None
    return str(value) if value not in (None, "") else None
