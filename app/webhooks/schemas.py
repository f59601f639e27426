"""Wire shapes of webhooks and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from app.core.vocabulary import named
from app.units.schemas import UnitCode

# Printable ASCII without spaces: the secret is an HMAC key, and every receiver's language
# must turn it into the same bytes.
SIGNING_KEY_PATTERN = r"^[\x21-\x7e]{16,256}$"
# http or https (any case), and an authority without user information ("user:pass@").
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^@/?#]+([/?#].*)?$"


class WebhookKind(StrEnum):
    dossier_overdue = "dossier.overdue"
    dossier_due_soon = "dossier.due_soon"
    digest_daily = "digest.daily"


named(WebhookKind, {
    WebhookKind.dossier_overdue: ("Hồ sơ quá hạn", "Dossier overdue"),
    WebhookKind.dossier_due_soon: ("Hồ sơ sắp đến hạn", "Dossier due soon"),
    WebhookKind.digest_daily: ("Bản tin hằng ngày", "Daily digest"),
})  # fmt: skip

DeliveryStatus = Literal["pending", "delivered", "failed"]
named(DeliveryStatus, {
    "pending": ("Đang chờ gửi", "Pending"),
    "delivered": ("Đã gửi", "Delivered"),
    "failed": ("Gửi không thành công", "Failed"),
})  # fmt: skip


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[
        HttpUrl,
        Field(
            description="Receives a POST per notification. Its host must resolve to public "
            "addresses only (no loopback, private, shared, link-local, unique-local, multicast, "
            "reserved or cloud metadata address), unless the operator allows the network; "
            "`https` is required outside development except to allowed networks. Checked "
            "here (422) and again before every delivery. No credentials in it.",
            # http(s) only, and no user information: what the validators below enforce.
            json_schema_extra={"pattern": URL_PATTERN},
        ),
    ]
    unit_code: UnitCode = Field(description="Notifications of this unit and all its subunits")
    kinds: Annotated[list[WebhookKind], Field(min_length=1, max_length=len(WebhookKind))]
    secret: Annotated[str | None, Field(pattern=SIGNING_KEY_PATTERN)] = Field(
        default=None,
        description="Signing key (16-256 printable ASCII characters); generated when absent",
    )

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: HttpUrl) -> HttpUrl:
        # The URL is shown to every key of the unit; authenticity comes from the signature.
        if value.username or value.password:
            raise ValueError("must not contain credentials; verify the signature instead")
        return value


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    unit_code: str
    kinds: list[str]
    created_by: str | None
    created_at: datetime
    disabled_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing key. Shown only in this response; store it with the receiver."
    )


class DeliveryOut(BaseModel):
    id: int
    kind: str
    unit_code: str
    dedupe_key: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="Set while the delivery is pending")
    delivered_at: datetime | None
    created_at: datetime
    data: dict[str, Any] = Field(description="The notification's `data`, as sent")
