"""Worker jobs of the shared plumbing."""

from __future__ import annotations

from typing import Any

from app.core.outbox import relay


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Every minute: hand jobs recorded in PostgreSQL to the queue (idempotent)."""
    return await relay(ctx["sessionmaker"], ctx["redis"])
