"""Imports every domain's tables so Alembic and tooling see the whole schema."""

from app.calendar.models import CalendarDay
from app.core.outbox import OutboxJob
from app.dossiers.models import Dossier, DossierEvent
from app.keys.models import ApiKey
from app.procedures.models import Procedure
from app.units.models import Unit

__all__ = ["ApiKey", "CalendarDay", "Dossier", "DossierEvent", "OutboxJob", "Procedure", "Unit"]
