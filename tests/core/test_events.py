"""Domain events: subscribers run at once, in order, in the publisher's session; every event is
wired; an event nobody hears is refused rather than lost."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import events
from app.wiring import wire


@dataclasses.dataclass(frozen=True, slots=True)
class Heard(events.Event):
    what: str


@dataclasses.dataclass(frozen=True, slots=True)
class Unheard(events.Event):
    pass


def test_every_event_of_the_project_has_a_subscriber_once_wired() -> None:
    wire()
    wire()  # idempotent: every app, worker and CLI of one process wires
    declared = [
        kind
        for _, kind in inspect.getmembers(events, inspect.isclass)
        if issubclass(kind, events.Event) and kind is not events.Event
    ]
    assert {k.__name__ for k in declared} == {
        "ScoreInputsChanged",
        "IdentifiersMapped",
        "DeadlinesFlagged",
    }
    assert all(len(events.subscribers(kind)) == 1 for kind in declared)


async def test_subscribers_run_in_order_in_the_session_and_answer() -> None:
    calls: list[tuple[str, Any, str]] = []

    async def first(session: AsyncSession, event: Heard) -> int:
        calls.append(("first", session, event.what))
        return 1

    async def second(session: AsyncSession, event: Heard) -> str:
        calls.append(("second", session, event.what))
        return "two"

    events.subscribe(Heard, first)
    events.subscribe(Heard, second)
    events.subscribe(Heard, first)  # once only
    session: Any = object()  # what the publisher holds, handed on as it is
    assert await events.publish(session, Heard("x")) == [1, "two"]
    assert calls == [("first", session, "x"), ("second", session, "x")]


async def test_an_event_nobody_subscribed_to_is_refused() -> None:
    with pytest.raises(RuntimeError, match="nobody subscribes to Unheard"):
        await events.publish(object(), Unheard())  # type: ignore[arg-type]
