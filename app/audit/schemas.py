"""Wire shapes of the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="Who: `admin` (the admin token), a key's name, or `cli`")
    actor_key_id: uuid.UUID | None
    action: str = Field(examples=["api_key.create", "calendar.override.set", "period.close"])
    target: str = Field(description="What was changed: a key id, a date, a unit code, ...")
    before: Any = Field(description="The state before the change (null: it did not exist)")
    after: Any = Field(description="The state after the change (null: it was removed)")
