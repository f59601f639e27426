"""The one settings object. Every knob is an environment variable prefixed ``CHISO_``."""

from __future__ import annotations

import ipaddress
import json
import ssl
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# An adapter path (``/login``, ``/api/dvcqg/service``) and a field or service name on its wire.
ADAPTER_PATH_PATTERN = r"^/[A-Za-z0-9._~/-]*$"
WIRE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class PortalSourceSettings(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    base_url: str
    username: str
    password: SecretStr
    madonvi: str | None = None
    page_size: int = Field(default=200, ge=1, le=500)
    # Where the adapter takes the login and the service calls (OpenCPS-style settings
    # auth_endpoint / integration_endpoint).
    auth_path: str = Field(default="/login", pattern=ADAPTER_PATH_PATTERN)
    integration_path: str = Field(default="/service", pattern=ADAPTER_PATH_PATTERN)
    # The listing of changed dossiers is chiso's convention: no public source names the
    # portal's, so a source that calls it or its paging fields otherwise says so here.
    list_service: str = Field(default="LayDanhSachHoSo", pattern=WIRE_NAME_PATTERN)
    cursor_field: str = Field(default="cursor", pattern=WIRE_NAME_PATTERN)
    page_size_field: str = Field(default="sodong", pattern=WIRE_NAME_PATTERN)
    remaining_field: str = Field(default="conlai", pattern=WIRE_NAME_PATTERN)
    records_field: str = Field(default="data", pattern=WIRE_NAME_PATTERN)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHISO_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Unset URLs mean "start the embedded PostgreSQL / Redis in data_dir".
    database_url: str | None = None
    redis_url: str | None = None
    listen_database_url: str | None = Field(
        default=None,
        description="PostgreSQL for the key-change listener's own session connection (LISTEN); "
        "default: database_url. Behind PgBouncer in transaction mode, PostgreSQL itself",
    )
    data_dir: Path = PROJECT_ROOT / ".data"
    admin_token: SecretStr | None = None
    timezone: str = "Asia/Ho_Chi_Minh"

    # Working-day rules. These defaults are the only ones: every process reads them from here.
    office_hours: str = Field(
        default="07:30-11:30,13:00-17:00",
        description="Comma-separated HH:MM-HH:MM office intervals of a working day",
    )
    intake_cutoff: time | None = Field(
        default=None, description="Receipts after this local time count from the next working day"
    )
    fractional_day_rule: Literal["hours_from_receipt", "from_next_day"] = "hours_from_receipt"
    max_supplement_requests: int = Field(
        default=1, ge=0, description="More supplement requests than this count as overdue"
    )
    future_tolerance_minutes: int = Field(
        default=15,
        ge=0,
        le=1440,
        description="A time stated later than its event's arrival by more than this is "
        "flagged `dated_in_future`",
    )
    due_soon_hours: int = Field(default=8, ge=1, le=400)

    # Portal adapter to pull dossiers from (one source; more through CHISO_PORTAL_SOURCES).
    portal_base_url: str | None = None
    portal_username: str | None = None
    portal_password: SecretStr | None = None
    portal_madonvi: str | None = None
    portal_page_size: int = Field(default=200, ge=1, le=500)
    portal_auth_path: str = Field(default="/login", pattern=ADAPTER_PATH_PATTERN)
    portal_integration_path: str = Field(default="/service", pattern=ADAPTER_PATH_PATTERN)
    portal_list_service: str = Field(default="LayDanhSachHoSo", pattern=WIRE_NAME_PATTERN)
    portal_cursor_field: str = Field(default="cursor", pattern=WIRE_NAME_PATTERN)
    portal_page_size_field: str = Field(default="sodong", pattern=WIRE_NAME_PATTERN)
    portal_remaining_field: str = Field(default="conlai", pattern=WIRE_NAME_PATTERN)
    portal_records_field: str = Field(default="data", pattern=WIRE_NAME_PATTERN)
    portal_sources: list[PortalSourceSettings] = Field(
        default_factory=list, description="JSON list of {name, base_url, username, password, ...}"
    )
    portal_timeout_seconds: float = Field(default=20.0, gt=0)
    portal_max_tries: int = Field(default=6, ge=1, le=20)
    # One-stop systems that push to chiso under the portal protocol (/dvcqg) log in first.
    portal_session_hours: float = Field(
        default=4, gt=0, le=168, description="Lifetime of a /dvcqg/login session, in hours"
    )

    # Derivation of queued dossiers (the worker's background loop).
    derive_chunk: int = Field(default=2000, ge=1, le=10_000, description="Dossiers per transaction")
    derive_in_flight: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Chunks one worker derives at once, each on a connection of its own; "
        "together they hold derive_chunk dossiers",
    )
    derive_idle_seconds: float = Field(
        default=0.5, gt=0, le=60, description="Pause between looks at an empty backlog"
    )

    # Worker schedules.
    sync_every_minutes: int = Field(default=5, ge=1, le=1440)
    sweep_every_minutes: int = Field(default=5, ge=1, le=1440)
    digest_at: time = Field(default=time(7, 30), description="Local time of the daily digest")
    response_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="Each API process answers anonymous GETs of public responses "
        "(rankings, scorecards) from memory this long (0: off)",
    )
    close_after_working_days: int = Field(
        default=10, ge=0, le=60, description="Close a month this many working days after it ends"
    )
    worker_metrics_port: int | None = Field(
        default=None, description="Serve the worker's Prometheus metrics on this port"
    )
    simulator_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the portal simulator `chiso run` starts (unset or 0: a free port)",
    )

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    key_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="API keys each API process keeps resolved in memory (0: look every key up)",
    )
    api_gc_threshold: int = Field(
        default=100_000,
        ge=0,
        le=10_000_000,
        description="Objects an API process allocates (net) before its cycle collector runs "
        "(0: Python's default, 700)",
    )
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)

    # Rate limits (token buckets in Redis; 0 turns a limit off; they fail open without Redis).
    rate_public_per_minute: int = Field(
        default=600, ge=0, description="Requests without a key, per client address and minute"
    )
    rate_public_burst: int | None = Field(
        default=None, ge=1, description="Bucket size for requests without a key (default: a minute)"
    )
    rate_public_store: Literal["local", "redis"] = Field(
        default="local",
        description="Where buckets for requests without a key live: each API process "
        "(no round trip; up to N x the limit over N processes) or Redis (shared)",
    )
    rate_write_per_minute: int = Field(
        default=1200, ge=0, description="POST/PUT/PATCH/DELETE requests per key and minute"
    )
    rate_write_burst: int | None = Field(
        default=None, ge=1, description="Bucket size of writes per key (default: a minute)"
    )
    rate_sync_ms: int = Field(
        default=200,
        ge=0,
        description="How often each API process adds the writes it let through to the shared "
        "per-key buckets in Redis and reads their level (0: after each write is answered)",
    )
    rate_refresh_per_minute: int = Field(
        default=6,
        ge=0,
        description="Requested score refreshes (POST /v1/scores/refresh) per key and minute",
    )
    rate_refresh_burst: int | None = Field(
        default=None, ge=1, description="Bucket size of requested refreshes (default: a minute)"
    )
    rate_trust_forwarded_for: bool = Field(
        default=False,
        description="Behind a trusted proxy: the client is the first X-Forwarded-For address",
    )

    rate_auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description="Failed authentications per client address and minute before 429 (0: off)",
    )
    rate_max_buckets: int = Field(
        default=100_000,
        ge=100,
        description="Rate-limit buckets kept per process (least recently used dropped first)",
    )

    # Request bodies: small routes get a small cap (batches keep max_body_bytes).
    max_small_body_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Cap of single-event, subscription and other small bodies",
    )

    # Webhooks go out, never in: public addresses only, unless an operator's range is allowed.
    # NoDecode: the environment may give a comma-separated list as well as a JSON one.
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of the operator's own receivers (private ranges allowed for "
        "webhooks; cloud metadata addresses never are)",
    )
    webhook_ca_bundle: Path | None = Field(
        default=None, description="CA bundle for receivers with internal certificates"
    )

    # Ownership: a new dossier's code names its unit ({unit}-{yymmdd}-{sequence}).
    dossier_code_prefix: Literal["required", "known"] = Field(
        default="known",
        description="`required`: a new dossier's code must start with the code of its unit or "
        "of a unit above it; `known`: only codes starting with a known unit's code are so bound",
    )

    # Privacy: free-text notes are not kept unless an operator asks for them (scrubbed then).
    store_notes: bool = Field(
        default=False, description="Keep events' free-text notes (identity data scrubbed)"
    )

    # Units of work that hit a deadlock or serialization failure are retried this often.
    retry_conflicts: int = Field(default=3, ge=0, le=10)

    # The worker: a heartbeat file for `chiso worker --check`, and the lag check.
    worker_heartbeat_file: Path | None = Field(
        default=None,
        description="Where the worker writes its heartbeat for `chiso worker --check` (default: "
        "data_dir/worker-heartbeat.json, or the temp dir when data_dir cannot be written)",
    )
    derive_check_every_minutes: int = Field(
        default=10, ge=1, le=1440, description="Re-queue dossiers whose state lags its history"
    )

    @field_validator("intake_cutoff", mode="before")
    @classmethod
    def _empty_cutoff(cls, value: object) -> object:
        return None if value in ("", "off", "none") else value

    @field_validator("office_hours")
    @classmethod
    def _office_hours_parse(cls, value: str) -> str:
        parse_office_hours(value)
        return value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _networks_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        # A typo here would silently admit (or shut out) receivers: refuse to start instead.
        canonical = []
        for text in value:
            try:
                canonical.append(str(ipaddress.ip_network(text.strip(), strict=True)))
            except ValueError as exc:
                raise ValueError(f"CHISO_WEBHOOK_ALLOWED_NETWORKS: {exc}") from None
        return canonical

    @field_validator("webhook_ca_bundle")
    @classmethod
    def _ca_bundle_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"CHISO_WEBHOOK_CA_BUNDLE {str(value)!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _secrets_outside_development(self) -> Settings:
        if self.environment != "development" and self.admin_token is None:
            raise ValueError(
                "CHISO_ADMIN_TOKEN must be set outside development "
                f"(CHISO_ENVIRONMENT={self.environment})"
            )
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
            raise ValueError("CHISO_ADMIN_TOKEN must be at least 16 characters")
        return self


def parse_office_hours(value: str) -> tuple[tuple[time, time], ...]:
    """``"07:30-11:30,13:00-17:00"`` → ((07:30, 11:30), (13:00, 17:00))."""
    intervals = []
    for part in value.split(","):
        start, sep, end = part.strip().partition("-")
        if not sep:
            raise ValueError(f"office interval {part!r} must look like 07:30-11:30")
        intervals.append((time.fromisoformat(start.strip()), time.fromisoformat(end.strip())))
    return tuple(intervals)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def portal_sources(settings: Settings) -> list[PortalSourceSettings]:
    """Every configured portal source: the single-source settings, then the JSON list."""
    sources = list(settings.portal_sources)
    if settings.portal_base_url:
        sources.insert(
            0,
            PortalSourceSettings(
                name="default",
                base_url=settings.portal_base_url,
                username=settings.portal_username or "",
                password=settings.portal_password or SecretStr(""),
                madonvi=settings.portal_madonvi,
                page_size=settings.portal_page_size,
                auth_path=settings.portal_auth_path,
                integration_path=settings.portal_integration_path,
                list_service=settings.portal_list_service,
                cursor_field=settings.portal_cursor_field,
                page_size_field=settings.portal_page_size_field,
                remaining_field=settings.portal_remaining_field,
                records_field=settings.portal_records_field,
            ),
        )
    return sources
