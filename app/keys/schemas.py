"""Wire shapes of API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.core.params import NO_NUL_PATTERN
from app.core.principal import Scope
from app.core.vocabulary import named
from app.units.schemas import UnitCode

named(Scope, {
    Scope.dossiers_write: ("Gửi sự kiện hồ sơ", "Post dossier events"),
    Scope.dossiers_read: ("Xem hồ sơ", "Read dossiers"),
    Scope.indicators_write: ("Gửi số liệu chỉ số", "Submit indicator values"),
    Scope.admin: ("Quản trị", "Administration"),
})  # fmt: skip


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=8)]
    unit_code: UnitCode | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    unit_code: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret. Shown only in this response; store it now.")
