"""The composition root: the one place where a floor is connected to the floors above it.

The domains import only downward (docs/ARCHITECTURE.md). What must still flow upward is
connected here, at startup, by whatever runs the code: the API (``app.main.create_app``), the
worker (``worker.settings``), the command line (``app.cli``) and the tests (``tests/conftest``):

- authentication (``app.core.auth``) looks bearer tokens up as API keys through
  ``app.keys.service.principal_for_key``, and as portal sessions on the portal protocol's
  routes;
- the domain events of ``app.core.events`` reach their subscribers;
- rankings count each unit's open data-integrity flags through insights.

:func:`wire` is idempotent: calling it again changes nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import auth, events
from app.insights import integrity
from app.keys.service import principal_for_key
from app.portal import repository as portal_repository
from app.portal import sessions as portal_sessions
from app.portal.envelope import PREFIX as PORTAL_PROTOCOL_PREFIX
from app.scores import rankings
from app.scores import repository as scores_repository
from app.webhooks import service as webhooks


async def _mark_scores_dirty(session: AsyncSession, event: events.ScoreInputsChanged) -> None:
    await scores_repository.mark_dirty(session, event.periods, event.kind)


async def _release_unmapped(session: AsyncSession, event: events.IdentifiersMapped) -> list[str]:
    return await portal_repository.queue_releases(session, event.tokens)


def wire() -> None:
    """Register the key resolver, the other bearer credentials and every event subscriber."""
    auth.register_key_resolver(principal_for_key)
    auth.BEARER_ALTERNATIVES[PORTAL_PROTOCOL_PREFIX] = portal_sessions.bearer_session
    events.subscribe(events.ScoreInputsChanged, _mark_scores_dirty)
    events.subscribe(events.IdentifiersMapped, _release_unmapped)
    events.subscribe(events.DeadlinesFlagged, webhooks.notify_flagged)
    # Rankings show each unit's open data-integrity flags; insights keeps them, above scores.
    rankings.count_flags_with(integrity.open_flag_counts)
