"""Wire shapes of the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.audit.models import ActorKind
from app.core.vocabulary import named

named(ActorKind, {
    ActorKind.admin_token: ("Mã quản trị (admin token)", "The admin token"),
    ActorKind.api_key: ("Khóa API", "An API key"),
    ActorKind.cli: ("Người vận hành, dòng lệnh", "An operator on the command line"),
    ActorKind.system: ("Tiến trình của chiso", "chiso's own processes"),
    ActorKind.unrecorded: ("Không ghi nhận", "Not recorded (older entries)"),
})  # fmt: skip


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_kind: ActorKind = Field(
        description="How the actor authenticated: `admin_token`, `api_key` (then "
        "`actor_key_id` says which), `cli` (an operator on the command line), `system` "
        "(chiso's own processes) or `unrecorded` (entries written before chiso recorded it)"
    )
    actor_key_id: uuid.UUID | None = Field(description="The acting key's id (kind `api_key`)")
    actor_name: str = Field(
        description="The key's name when it acted, `admin token`, or the operator's label"
    )
    action: str = Field(examples=["api_key.create", "calendar.override.set", "period.close"])
    target: str = Field(description="What was changed: a key id, a date, a unit code, ...")
    unit_code: str | None = Field(
        description="The unit the change is about; null for national changes (procedures, "
        "calendar, periods, keys bound to no unit)"
    )
    before: Any = Field(description="The state before the change (null: it did not exist)")
    after: Any = Field(description="The state after the change (null: it was removed)")

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated, kept as it was: `admin` for the admin token, else "
        "`actor_name`. Identify actors by `actor_kind` and `actor_key_id`: names are not unique",
        # Marked in the schema only: a runtime deprecation would warn on every serialisation.
        json_schema_extra={"deprecated": True},
    )
    @property
    def actor(self) -> str:
        return "admin" if self.actor_kind is ActorKind.admin_token else self.actor_name
