"""``TraCuuHoSo``: a stored dossier read back in the portal's record shape, without personal
data (chiso keeps none), for the key's subtree only.

One-stop systems look a dossier up before syncing it, to choose ``isUpdating``; an unknown
dossier and one outside the key's subtree read alike (no record), so a lookup never tells a
key that another unit's dossier exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden, NotFound
from app.core.principal import Principal
from app.core.settings import Settings
from app.dossiers import service as dossiers
from app.dossiers.schemas import DossierStatus
from app.portal.records import COMPACT_TIME_FORMAT, PORTAL_TZ
from app.procedures import service as procedures
from app.units import repository as units

# Statuses whose end the portal dates with NgayKetThucXuLy although nothing was "finished".
_CLOSING = {DossierStatus.not_accepted, DossierStatus.withdrawn, DossierStatus.stopped}
_EVENTS_PAGE = 500


def compact_time(value: datetime | None) -> str:
    """An instant as the portal writes it: ``yyyyMMddHHmmss`` in Vietnam time; ``""`` = none."""
    return value.astimezone(PORTAL_TZ).strftime(COMPACT_TIME_FORMAT) if value else ""


async def _latest_by_status(
    session: AsyncSession, principal: Principal, code: str
) -> dict[int, datetime]:
    """When the dossier last entered each status, from its history."""
    latest: dict[int, datetime] = {}
    after: tuple[str, int] | None = None
    while True:
        rows = await dossiers.dossier_events(session, principal, code, after, _EVENTS_PAGE)
        for row in rows[:_EVENTS_PAGE]:
            latest[row.status] = max(row.occurred_at, latest.get(row.status, row.occurred_at))
        if len(rows) <= _EVENTS_PAGE:
            return latest
        last = rows[_EVENTS_PAGE - 1]
        after = (last.occurred_at.isoformat(), last.id)


async def portal_record(
    session: AsyncSession, settings: Settings, principal: Principal, code: str, at: datetime
) -> dict[str, Any] | None:
    """The dossier ``code`` as a portal record; None when unknown or outside the key's units."""
    try:
        dossier = await dossiers.get_dossier(session, settings, principal, code, at)
    except (NotFound, Forbidden):
        return None
    entered = await _latest_by_status(session, principal, code)
    status = DossierStatus(dossier.status)
    if status in _CLOSING:
        ended, returned = entered.get(status), None
    else:
        ended, returned = entered.get(DossierStatus.finished), entered.get(DossierStatus.returned)
    procedure = await procedures.get(session, dossier.procedure_code)
    unit = await units.get(session, dossier.unit_code)
    return {
        "MaHoSo": dossier.code,
        "MaTTHC": dossier.procedure_code,
        "TenTTHC": procedure.name,
        "TrangThaiHoSo": str(int(status)),
        "NgayTiepNhan": compact_time(dossier.received_at),
        "NgayHenTra": compact_time(dossier.due_at),
        "NgayKetThucXuLy": compact_time(ended),
        "NgayTra": compact_time(returned),
        "KenhThucHien": str(int(dossier.channel)),
        "DonViXuLy": unit.name if unit is not None else "",
    }
