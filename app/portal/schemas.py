"""Wire shapes of the portal-compatible endpoints (the portal's own envelope)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class PortalRecordResult(BaseModel):
    index: int
    MaHoSo: str | None
    result: Literal["stored", "duplicate", "rejected"]
    events_stored: int
    events_duplicate: int
    errors: list[dict[str, Any]] | None = None


class PortalSyncResult(BaseModel):
    stored: int
    duplicate: int
    rejected: int
    items: list[PortalRecordResult]


class PortalEnvelope(BaseModel):
    """``{error_code, message, result}``: 0 = every record accepted, 1 = some were rejected."""

    error_code: int
    message: str
    result: PortalSyncResult
