"""The one settings object. Every knob is an environment variable prefixed ``CHISO_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHISO_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Unset URLs mean "start the embedded PostgreSQL / Redis in data_dir".
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = PROJECT_ROOT / ".data"
    admin_token: SecretStr | None = None
    timezone: str = "Asia/Ho_Chi_Minh"

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
