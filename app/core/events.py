"""In-process domain events: how a floor tells the floors above it that something happened.

A domain imports only what lies below it (docs/ARCHITECTURE.md). When a change on one floor
concerns a floor above — dossiers were re-derived, so the scores of their periods are stale; a
unit got an identifier, so the portal records waiting for it can go — the lower domain
publishes an event and the higher one subscribes to it. Subscriptions are made in one place,
the composition root ``app.wiring``, so the domains never name each other upward.

``await publish(session, event)`` runs every subscriber of the event's type at once, one
after the other in the order they subscribed, in the publisher's session: what they write
commits or rolls back with the change that caused it (one unit of work, whose boundary stays
with the publisher's caller). A subscriber that raises fails the publisher. Nothing is queued
or retried here: work that must outlive the transaction is recorded in the outbox by the
subscriber (``app.core.outbox.add_job``), so it happens if and only if the change commits.

``publish`` returns what each subscriber returned, in order: a publisher that reports the
consequences of its change (how many notifications a sweep recorded, which quarantined
records a unit releases) reads them there without knowing who produced them. An event nobody
subscribed to is a wiring mistake and raises, rather than silently losing the consequence.

The events are declared here, below every domain, so publishers and subscribers on any floor
share one definition: plain frozen values, nothing to import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every domain event: a frozen record of something that happened."""


E = TypeVar("E", bound=Event)
Subscriber = Callable[[AsyncSession, E], Awaitable[Any]]

_subscribers: dict[type[Event], list[Callable[[AsyncSession, Any], Awaitable[Any]]]] = {}


def subscribe(kind: type[E], subscriber: Subscriber[E]) -> None:
    """Run ``subscriber`` on every ``kind`` event published from now on (once, however many
    times the composition root is wired: tests build many apps in one process)."""
    subscribers = _subscribers.setdefault(kind, [])
    if subscriber not in subscribers:
        subscribers.append(subscriber)


def subscribers(kind: type[Event]) -> list[Callable[[AsyncSession, Any], Awaitable[Any]]]:
    return list(_subscribers.get(kind, ()))


async def publish(session: AsyncSession, event: Event) -> list[Any]:
    """Run the subscribers of ``event`` in ``session``; returns what each one returned."""
    found = _subscribers.get(type(event))
    if not found:
        raise RuntimeError(
            f"nobody subscribes to {type(event).__name__}: call app.wiring.wire() at startup"
        )
    return [await subscriber(session, event) for subscriber in found]


# --- the events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreInputsChanged(Event):
    """What the service index is computed from changed for ``periods`` (``YYYY``, ``YYYY-Qn``,
    ``YYYY-MM``): dossiers re-derived or newly overdue, indicator values submitted.

    Published by dossiers and indicators; scores queues the periods for a refresh (a closed
    period records an amendment of ``kind`` instead).
    """

    kind: str  # what changed: "dossiers", "submission"
    periods: tuple[str, ...]
    unit_codes: tuple[str, ...] = ()  # the units whose inputs changed, when the publisher knows


@dataclass(frozen=True, slots=True)
class IdentifiersMapped(Event):
    """``tokens`` (unit codes and electronic identifiers) now name stored units.

    Published by units on every upsert; the portal queues the release of the records it had
    quarantined under any of them, and answers the tokens it queued a release for.
    """

    tokens: frozenset[str]


@dataclass(frozen=True, slots=True)
class DeadlinesFlagged(Event):
    """The overdue sweep flagged dossiers that turned overdue or due soon since its last run.

    Each row carries ``code``, ``unit_code``, ``procedure_code``, ``due_at`` and ``overdue_at``.
    Published by dossiers; webhooks records a notification per dossier and deadline for the
    units that subscribed, and answers how many it recorded.
    """

    overdue: tuple[Any, ...]
    due_soon: tuple[Any, ...]
