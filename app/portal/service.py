"""Store portal-shape dossier snapshots through the same ingestion path as the JSON API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.settings import Settings
from app.dossiers import service as dossiers
from app.dossiers.schemas import DossierEventIn
from app.portal.records import parse_portal_batch
from app.portal.schemas import PortalRecordResult, PortalSyncResult

# Ingestion reports an event's unknown unit/procedure by its JSON field; say it in the portal's.
_PORTAL_FIELD = {"unit_code": "MaDonVi", "procedure_code": "MaTTHC"}


async def ingest_records(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    raw_records: Sequence[Any],
    default_unit: str | None,
    source: str = "portal",
    derive_now: bool = False,
) -> PortalSyncResult:
    parsed = parse_portal_batch(list(raw_records), default_unit)
    flat: list[DossierEventIn] = []
    owner: list[int] = []
    for index, events, _ in parsed:
        for event in events or []:
            flat.append(event)
            owner.append(index)
    outcome = await dossiers.ingest(
        session, settings, principal, flat, source=source, derive_now=derive_now,
        unit_from_prefix=True,
    )  # fmt: skip

    per_record: dict[int, list[Any]] = {}
    for flat_index, result in enumerate(outcome.results):
        per_record.setdefault(owner[flat_index], []).append(result)

    items: list[PortalRecordResult] = []
    for index, events, errors in parsed:
        code = _dossier_code(raw_records[index])
        results = per_record.get(index, [])
        rejected = [r for r in results if r.result in ("rejected", "conflict")]
        if errors or rejected or not events:
            record_errors = list(errors or [])
            for result in rejected:
                for error in result.errors or []:
                    field = error["pointer"].rsplit("/", 1)[-1]
                    pointer = f"#/{index}/{_PORTAL_FIELD.get(field, field)}"
                    record_errors.append({"pointer": pointer, "detail": error["detail"]})
            items.append(
                PortalRecordResult(
                    index=index, MaHoSo=code, result="rejected", events_stored=0,
                    events_duplicate=0, errors=_unique(record_errors),
                )
            )  # fmt: skip
            continue
        stored = sum(1 for r in results if r.result == "stored")
        updated = sum(1 for r in results if r.result == "updated")
        items.append(
            PortalRecordResult(
                index=index, MaHoSo=code,
                result="stored" if stored else "updated" if updated else "duplicate",
                events_stored=stored, events_updated=updated,
                events_duplicate=len(results) - stored - updated,
            )
        )  # fmt: skip
    return PortalSyncResult(
        stored=sum(1 for i in items if i.result == "stored"),
        updated=sum(1 for i in items if i.result == "updated"),
        duplicate=sum(1 for i in items if i.result == "duplicate"),
        rejected=sum(1 for i in items if i.result == "rejected"),
        items=items,
    )


def _dossier_code(raw: Any) -> str | None:
    value = raw.get("MaHoSo") if isinstance(raw, dict) else None
    return str(value) if value not in (None, "") else None


def _unique(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for error in errors:
        key = (error.get("pointer", ""), error.get("detail", ""))
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out
