"""Worker jobs of the calendar domain."""

from __future__ import annotations

from typing import Any

from app.dossiers.service import recompute_open_from


async def recompute_open_dossiers(ctx: dict[str, Any], day_iso: str) -> int:
    """A calendar override changed ``day_iso``: re-derive the open dossiers it may affect."""
    async with ctx["sessionmaker"]() as session:
        return await recompute_open_from(session, ctx["settings"], day_iso)
