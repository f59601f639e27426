"""Operators' view of the portal records waiting for their unit, one row per unknown identifier.

Any admin may read it, a unit-bound one too: an identifier no unit holds belongs to no subtree
yet, the figures are operational (no record's content, no personal data), and a bound admin
needs them to map its own units (it may set identifiers within its subtree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from app.core.database import DbSession
from app.core.pagination import Page, PageParams, Text, page_params, paginate
from app.keys.access import UnitAdmin
from app.portal import unmapped

router = APIRouter(tags=["portal"])


class UnmappedIdentifier(BaseModel):
    identifier: str = Field(description="The unit token no unit answers to (e.g. 000.00.12.H01)")
    records: int = Field(description="Records kept for it")
    held: int = Field(description="Of those, records a release could not ingest (see reasons)")
    reasons: list[str] = Field(description="Why held records were not ingested")
    first_seen_at: datetime
    last_seen_at: datetime
    example_dossier_code: str = Field(description="The MaHoSo of the record seen last")


@router.get(
    "/v1/portal/unmapped",
    response_model=Page[UnmappedIdentifier],
    summary="Portal records waiting for their unit, counted per unknown identifier (any admin): "
    "give a unit that identifier to release them",
)
async def list_unmapped(
    session: DbSession,
    _: UnitAdmin,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UnmappedIdentifier]:
    after = page.after((Text(max_length=64),))
    rows = await unmapped.list_unmapped(
        session, after=after[0] if after else None, limit=page.limit
    )
    items, next_cursor = paginate(rows, page.limit, lambda r: (r.identifier,))
    return Page(
        items=[UnmappedIdentifier.model_validate(r, from_attributes=True) for r in items],
        next=next_cursor,
    )
