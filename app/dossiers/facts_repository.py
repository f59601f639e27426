"""All SQL about the index facts kept per dossier (``dossier_facts``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.dossiers.facts import DossierFacts

_TYPES = {
    "dossier_code": "text",
    "papers_total": "integer",
    "papers_with_file": "integer",
    "papers_digitised": "integer",
    "papers_reused": "integer",
    "papers_from_national_store": "integer",
    "fees_count": "integer",
    "fees_total": "numeric",
    "fees_all_zero": "boolean",
    "results_total": "integer",
    "results_with_file": "integer",
    # A JSON array of codes per row, read straight into an array (json_to_recordset converts
    # a JSON array for an array column): 10 % of the upsert's time went to a subquery per row
    # unpacking it as jsonb (17.1 against 19.1 ms for 1,000 new dossiers, 2026-12-01).
    "databases": "text[]",
    "vneid_verified": "boolean",
    "has_digitised_parts": "boolean",
    "submitted_where": "text",
    "submitted_at": "timestamptz",
    "refused_at": "timestamptz",
    "payment_code": "text",
    "result_return": "text",
    "applicant_kind": "smallint",
}
_FACTS = tuple(f.name for f in fields(DossierFacts))
assert set(_FACTS) == set(_TYPES) - {"dossier_code"}, "every fact has a column type"


def upsert_sql(rows: str, when: str | None = None) -> str:
    """The upsert of the facts in ``rows`` (an SQL expression: a JSON array of the objects
    :func:`facts_json` encodes), only ``when`` that condition holds (an SQL expression)."""
    names = ", ".join(_TYPES)
    record = ", ".join(f"{c} {t}" for c, t in _TYPES.items())
    # A fact the new record does not state (NULL: the producer did not send that field) keeps
    # what an earlier record said; one it states replaces it. An unchanged row is not
    # rewritten, so re-sent records leave updated_at alone.
    kept = {c: f"COALESCE(EXCLUDED.{c}, dossier_facts.{c})" for c in _FACTS}
    # The rows travel as one JSON array of objects, the facts stated and nothing else: one
    # parameter, encoded in one call (20 array parameters cost asyncpg a type check per
    # element), read by one json_to_recordset.
    return f"""
        INSERT INTO dossier_facts ({names}, updated_at)
        SELECT {", ".join(f"v.{c}" for c in _TYPES)}, now()
        FROM json_to_recordset({rows}) AS v({record}) {f"WHERE {when}" if when else ""}
        ON CONFLICT (dossier_code) DO UPDATE SET
            {", ".join(f"{c} = {kept[c]}" for c in _FACTS)}, updated_at = now()
        WHERE ({", ".join(f"dossier_facts.{c}" for c in _FACTS)})
              IS DISTINCT FROM ({", ".join(kept[c] for c in _FACTS)})
        """  # noqa: S608 - column names are constants


def _upsert_statement() -> Any:
    return text(upsert_sql("CAST(:rows AS json)"))


_UPSERT = _upsert_statement()
_SELECT = text(
    f"SELECT {', '.join(_FACTS)} FROM dossier_facts WHERE dossier_code = :code"  # noqa: S608
)


def _merged(facts: Sequence[tuple[str, DossierFacts]]) -> dict[str, DossierFacts]:
    """One row per dossier: a later record of the same dossier in the batch completes and
    overrides an earlier one, as it would in separate batches."""
    by_code: dict[str, DossierFacts] = {}
    for code, item in facts:
        earlier = by_code.get(code)
        by_code[code] = item if earlier is None else item.merged_over(earlier)
    return by_code


async def upsert_facts(session: AsyncSession, facts: Sequence[tuple[str, DossierFacts]]) -> None:
    """Keep the latest facts of each dossier, one statement for the batch (the caller commits).

    ``facts`` are ``(dossier_code, facts)`` in arrival order.
    """
    if not facts:
        return
    await session.execute(_UPSERT, {"rows": facts_json(facts)})


async def upsert_stated(session: AsyncSession, stated: dict[str, dict[str, Any]]) -> None:
    """:func:`upsert_facts` for the facts events posted through the API state
    (``DossierEventIn.facts``), already merged per dossier (``{dossier_code: facts}``, a later
    event's facts updating an earlier one's)."""
    await session.execute(_UPSERT, {"rows": stated_json(stated)})


def stated_json(stated: dict[str, dict[str, Any]]) -> str:
    """:func:`facts_json` for facts as events state them (``DossierEventIn.facts``, merged per
    dossier): the same rows, without a :class:`DossierFacts` per dossier (a batch holds
    thousands). Each database code is kept once, in the order first sent. ``stated`` is not
    changed."""
    rows = []
    for code, facts in stated.items():
        row = {**facts, "dossier_code": code}
        if (databases := row.get("databases")) is not None:
            row["databases"] = list(dict.fromkeys(databases))
        rows.append(row)
    return _ENCODER.encode(rows).decode()


def facts_json(facts: Sequence[tuple[str, DossierFacts]]) -> str:
    """``facts`` (``(dossier_code, facts)`` in arrival order) as the JSON rows of
    :func:`upsert_sql`, one per dossier."""
    rows = [_stated(code, item) for code, item in _merged(facts).items()]
    return _ENCODER.encode(rows).decode()


# Amounts as JSON numbers (exact: PostgreSQL reads them as numeric).
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _stated(code: str, item: DossierFacts) -> dict[str, Any]:
    """A dossier's row: the facts it states (a fact left out is NULL). Times in UTC, as asyncpg
    would send them (PostgreSQL reads no offset beyond 15:59)."""
    row: dict[str, Any] = {"dossier_code": code}
    for name in _FACTS:
        value = getattr(item, name)
        if value is not None:
            row[name] = value.astimezone(UTC) if name in _TIMES else value
    return row


_TIMES = frozenset({"submitted_at", "refused_at"})


async def facts_of(session: AsyncSession, dossier_code: str) -> DossierFacts | None:
    """The facts kept for one dossier, ``None`` when none were."""
    row = (await session.execute(_SELECT, {"code": dossier_code})).first()
    if row is None:
        return None
    values = dict(zip(_FACTS, row, strict=True))
    if values["databases"] is not None:
        values["databases"] = tuple(values["databases"])
    return DossierFacts(**values)
