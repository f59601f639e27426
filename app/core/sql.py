"""Set-based writes: many rows as one array parameter per column, expanded by ``unnest``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def unnest_arrays(types: Mapping[str, str]) -> str:
    """``CAST(:a AS text[]), CAST(:b AS integer[]), …`` for ``FROM unnest(…)``.

    ``jsonb`` columns travel as ``text[]`` (asyncpg has no jsonb array codec): select them back
    as ``v.column::jsonb``.
    """
    return ", ".join(f"CAST(:{c} AS {'text' if t == 'jsonb' else t}[])" for c, t in types.items())


def columns_of(rows: Sequence[Mapping[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    """Row dicts turned into one list per column: the parameters of :func:`unnest_arrays`."""
    return {name: [row[name] for row in rows] for name in names}
