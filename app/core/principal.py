"""Who is calling: the :class:`Principal` every domain is handed, and the :class:`Scope` of a key.

Plain values with no dependency on the rest of the project, so any floor may name a caller
without importing how callers are authenticated (``app.core.auth``) or where keys are kept
(``app.keys``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    dossiers_write = "dossiers:write"
    dossiers_read = "dossiers:read"
    indicators_write = "indicators:write"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: ``admin`` (the admin token) or an API key with scopes and maybe a unit."""

    name: str
    scopes: frozenset[str]
    unit_code: str | None = None
    key_id: str | None = None
    is_admin: bool = field(default=False)

    def has(self, scope: Scope) -> bool:
        return self.is_admin or Scope.admin in self.scopes or scope in self.scopes


ADMIN = Principal(name="admin", scopes=frozenset({Scope.admin}), is_admin=True)
