"""Imports every domain's tables so Alembic and tooling see the whole schema."""

from app.audit.models import AuditEntry
from app.calendar.models import CalendarDay
from app.core.models import OutboxJob
from app.dossiers.models import (
    DerivationCheck,
    Dossier,
    DossierBacklog,
    DossierEvent,
    DossierOwner,
    StoredDossierFacts,
)
from app.indicators.models import IndicatorValue
from app.insights.models import IntegrityFlag, ScoreProjection
from app.keys.models import ApiKey
from app.portal.models import (
    OfficialScore,
    PortalSession,
    PortalSyncState,
    PortalUnmapped,
    QuarantinedRecord,
)
from app.procedures.models import Procedure
from app.scores.models import (
    DirtyPeriod,
    PeriodAmendment,
    PeriodState,
    RankingSnapshot,
    ScoreSnapshot,
)
from app.units.models import Unit
from app.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "AuditEntry",
    "CalendarDay",
    "DerivationCheck",
    "DirtyPeriod",
    "Dossier",
    "DossierBacklog",
    "DossierEvent",
    "DossierOwner",
    "IndicatorValue",
    "IntegrityFlag",
    "OfficialScore",
    "OutboxJob",
    "PeriodAmendment",
    "PeriodState",
    "PortalSession",
    "PortalSyncState",
    "PortalUnmapped",
    "Procedure",
    "QuarantinedRecord",
    "RankingSnapshot",
    "ScoreProjection",
    "ScoreSnapshot",
    "StoredDossierFacts",
    "Unit",
    "Webhook",
    "WebhookDelivery",
]
