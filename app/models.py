"""Imports every domain's tables so Alembic and tooling see the whole schema."""

from app.keys.models import ApiKey
from app.procedures.models import Procedure
from app.units.models import Unit

__all__ = ["ApiKey", "Procedure", "Unit"]
