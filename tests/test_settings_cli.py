"""Settings refuse unsafe production configs; the `chiso` command manages keys and data."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
from pydantic import ValidationError

from app.core.settings import Settings
from tests.helpers import ADMIN


def test_production_refuses_to_start_without_an_admin_token() -> None:
    with pytest.raises(ValidationError, match="CHISO_ADMIN_TOKEN must be set"):
        Settings(environment="production", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(environment="production", admin_token="short")  # type: ignore[arg-type]
    assert Settings(environment="development").admin_token is None


def test_bad_office_hours_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(office_hours="07:30 to 11:30")


def chiso(database_url: str, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHISO_DATABASE_URL": database_url, "CHISO_REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_cli_loads_reference_data_and_creates_and_revokes_keys(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    db, redis = settings.database_url or "", settings.redis_url or ""
    loaded = await asyncio.to_thread(chiso, db, redis, "reference")
    assert loaded.returncode == 0, loaded.stderr
    assert len((await client.get("/v1/units?level=province&limit=500")).json()["items"]) == 34

    created = await asyncio.to_thread(
        chiso, db, redis, "keys", "create", "--name", "desk", "--scope", "admin", "--unit", "H01"
    )
    assert created.returncode == 0, created.stderr
    lines = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    key, key_id = lines["key"].strip(), lines["id"].strip()
    listed = await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    assert listed.json()["items"][0]["unit_code"] == "H01"

    revoked = await asyncio.to_thread(chiso, db, redis, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    after = await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert after.status_code == 401
    assert (await client.get("/v1/api-keys", headers=ADMIN)).status_code == 200


async def test_cli_reports_bad_csv_rows_without_storing_any(
    client: httpx.AsyncClient, settings: Settings, tmp_path: object
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "units.csv"
    path.write_text(
        "code,name,level,parent_code\nH01,An Giang,province,\nH01.01,Long Xuyên,galaxy,H01\n",
        encoding="utf-8",
    )
    db, redis = settings.database_url or "", settings.redis_url or ""
    result = await asyncio.to_thread(chiso, db, redis, "units", "load", str(path))
    assert result.returncode == 2
    assert "line 3" in result.stderr
    assert (await client.get("/v1/units/H01")).status_code == 404


def test_chiso_run_prints_the_admin_token_only_when_it_made_it(tmp_path: object) -> None:
    from pathlib import Path

    from app.cli import dev_admin_token, dev_processes

    data = Path(str(tmp_path))
    operator = Settings(
        environment="development",
        admin_token="operator-secret-0123456789",  # type: ignore[arg-type]
        data_dir=data,
    )
    token, shown = dev_admin_token(operator)
    assert token == "operator-secret-0123456789"  # the API gets it, the banner does not
    assert shown == "Bearer <the token from CHISO_ADMIN_TOKEN>"
    assert not (data / "dev-admin-token").exists()

    own = Settings(environment="development", admin_token=None, data_dir=data)
    token, shown = dev_admin_token(own)
    assert token.startswith("dev-")
    assert shown == f"Bearer {token}  (development token, kept in {data / 'dev-admin-token'})"
    assert dev_admin_token(own) == (token, shown)  # read back from the file the next time
    # The API of `chiso run` takes X-Forwarded-For from no one unless told to.
    assert "--no-proxy-headers" in dev_processes(8000, own)["api"]
