"""Portal records whose unit is not known yet: counted for operators, released once mapped.

Ingestion keeps a record no unit answers to (``repository.quarantine_unmapped``). Mapping the
unknown identifier to a unit (``PUT /v1/units/{code}``, ``chiso units load``) queues
``release_unmapped``, which ingests the kept records as the key that sent them — within that
key's subtree, as if it had sent them again — and keeps those it cannot ingest, with why.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal, Scope
from app.core.settings import Settings
from app.keys import repository as keys
from app.portal import repository
from app.portal.repository import PUSHED, KeptRecord, UnmappedCount
from app.portal.service import ingest_records
from app.units.service import resolve_units

KEY_REVOKED = "key revoked"
KEY_CANNOT_WRITE = "key lacks dossiers:write"


@dataclass
class Released:
    """What one chunk of a release did; ``results`` counts ingestion results by name."""

    taken: int = 0
    held: int = 0
    results: Counter[str] = field(default_factory=Counter)

    @property
    def waiting_again(self) -> int:
        """Records ingestion quarantined again (their unit still unresolved)."""
        return self.results["quarantined"]


async def list_unmapped(
    session: AsyncSession, *, after: str | None, limit: int
) -> list[UnmappedCount]:
    return await repository.unmapped_counts(session, after=after, limit=limit)


async def release_chunk(
    session: AsyncSession, settings: Settings, identifier: str, limit: int
) -> Released:
    """Take up to ``limit`` records waiting for ``identifier`` and ingest them; the caller
    commits (and may run this again on contention: what it took is back then)."""
    if identifier not in await resolve_units(session, [identifier]):
        return Released()  # unmapped again before the job ran: they keep waiting
    taken = await repository.take_unmapped(session, identifier, limit)
    outcome = Released(taken=len(taken))
    # Resolved here, so the release does not depend on how ingestion reads the fallback unit.
    units = await resolve_units(session, {k.madonvi for k in taken if k.madonvi})
    for _, group in itertools.groupby(sorted(taken, key=_sender), key=_sender):
        kept = list(group)
        principal, refusal = await _principal(session, kept[0])
        if principal is None:
            await repository.hold_unmapped(session, kept, refusal)
            outcome.held += len(kept)
            continue
        madonvi = kept[0].madonvi
        result = await ingest_records(
            session,
            settings,
            principal,
            [k.record for k in kept],
            default_unit=units.get(madonvi, madonvi) if madonvi else None,
            source="portal" if kept[0].source == PUSHED else "sync",
        )
        for item in result.items:
            outcome.results[item.result] += 1
            if item.result == "rejected":
                # e.g. the unit now mapped lies outside the sending key's subtree.
                await repository.hold_unmapped(session, [kept[item.index]], _reason(item.errors))
                outcome.held += 1
    return outcome


def _sender(kept: KeptRecord) -> tuple[str, str, str, str, str]:
    """Records ingested together share who sent them, how and with which fallback unit."""
    return (str(kept.key_id or ""), kept.posted_by, kept.posted_within or "", kept.source,
            kept.madonvi or "")  # fmt: skip


async def _principal(session: AsyncSession, kept: KeptRecord) -> tuple[Principal | None, str]:
    """The caller that sent ``kept`` as it stands now (None and why when it may not act)."""
    if kept.key_id is None:
        # The admin token or a sync source: no key to revoke; its reach is the one recorded.
        return Principal(
            name=kept.posted_by,
            scopes=frozenset({Scope.dossiers_write}),
            unit_code=kept.posted_within,
        ), ""
    key = await keys.get(session, kept.key_id)
    if key is None or key.revoked_at is not None:
        return None, KEY_REVOKED
    principal = Principal(
        name=key.name, scopes=frozenset(key.scopes), unit_code=key.unit_code, key_id=str(key.id)
    )
    if not principal.has(Scope.dossiers_write):
        return None, KEY_CANNOT_WRITE
    return principal, ""


def _reason(errors: Sequence[dict[str, object]] | None) -> str:
    details = dict.fromkeys(str(e.get("detail") or "") for e in errors or [])  # once each, in order
    return "; ".join(d for d in details if d) or "rejected"
