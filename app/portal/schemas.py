"""Wire shapes of the portal-compatible endpoints (the portal's own envelope)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PortalRecordResult(BaseModel):
    index: int
    MaHoSo: str | None
    result: Literal["stored", "updated", "duplicate", "quarantined", "rejected"] = Field(
        description="`stored`: new events; `updated`: a re-sent record changed stored values; "
        "`duplicate`: nothing new; `quarantined`: kept until its unit's identifier is mapped; "
        "`rejected`: see `errors`"
    )
    reason: str | None = Field(
        default=None,
        description="Why it was rejected or quarantined, or what was odd but stored",
    )
    events_stored: int
    events_updated: int = 0
    events_duplicate: int
    errors: list[dict[str, Any]] | None = None


class PortalSyncResult(BaseModel):
    stored: int
    updated: int = 0
    quarantined: int = 0
    duplicate: int
    rejected: int
    items: list[PortalRecordResult]


class PortalEnvelope(BaseModel):
    """``{error_code, message, result}``: 0 = every record accepted, 1 = some were rejected."""

    error_code: int
    message: str
    result: PortalSyncResult


class SyncStatus(BaseModel):
    source: str
    cursor: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    lag_seconds: float | None
    last_error: str | None
    last_error_at: datetime | None
    records_synced: int
    pages_synced: int
    quarantined: int


class QuarantinedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    dossier_code: str | None
    raw: Any
    errors: list[dict[str, Any]]
    first_seen_at: datetime
    last_seen_at: datetime
    times_seen: int
