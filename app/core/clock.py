"""The service's notion of "now", one per app, so deadlines can be evaluated at a fixed instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import Request

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()
