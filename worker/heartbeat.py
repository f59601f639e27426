"""The worker's heartbeat file and the liveness probe that reads it (``chiso worker --check``).

The supervisor rewrites the file every few seconds whatever Redis or PostgreSQL do, so an
orchestrator restarts the worker only when its process is gone or stuck, never for an outage
that a restart cannot fix. The file also says which part is down, for the operator.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.core.settings import Settings

HEARTBEAT_EVERY_SECONDS = 5.0
# Six missed beats: long enough for a busy event loop, short enough for compose's 15 s probe.
STALE_AFTER_SECONDS = 30.0
FILE_NAME = "worker-heartbeat.json"


def heartbeat_path(settings: Settings, *, create: bool = False) -> Path:
    """``CHISO_WORKER_HEARTBEAT_FILE``, else ``data_dir/worker-heartbeat.json``, else (a data
    dir that cannot be written, as in the read-only container image) the temp directory.

    The worker (``create=True``) makes ``data_dir`` when it can; the probe never creates
    anything, and resolves to the same file as long as both run with the same settings.
    """
    if settings.worker_heartbeat_file is not None:
        return settings.worker_heartbeat_file
    data_dir = settings.data_dir
    if create:
        with contextlib.suppress(OSError):
            data_dir.mkdir(parents=True, exist_ok=True)
    if data_dir.is_dir() and os.access(data_dir, os.W_OK | os.X_OK):
        return data_dir / FILE_NAME
    return Path(tempfile.gettempdir()) / f"chiso-{FILE_NAME}"


def write_heartbeat(path: Path, beat: dict[str, Any]) -> None:
    """Replace the file atomically: the probe never reads half a heartbeat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(beat, out, indent=1, sort_keys=True)
        os.chmod(scratch, 0o644)  # the probe may run as another user
        os.replace(scratch, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
        raise


def check_liveness(settings: Settings, now: datetime | None = None) -> tuple[int, str]:
    """(exit code, one line for the operator): 0 while the heartbeat is fresh, whatever Redis
    and PostgreSQL say; 1 when it is missing, unreadable or older than the limit."""
    path = heartbeat_path(settings)
    now = now or datetime.now(UTC)
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
        written = datetime.fromisoformat(beat["written_at"])
    except FileNotFoundError:
        return 1, f"worker not alive: no heartbeat file at {path}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return 1, f"worker not alive: unreadable heartbeat {path} ({type(exc).__name__})"
    age = (now - written).total_seconds()
    pid = beat.get("pid", "?")
    if age > STALE_AFTER_SECONDS:
        return 1, (
            f"worker not alive: last heartbeat {age:.0f} s ago (pid {pid}, "
            f"limit {STALE_AFTER_SECONDS:.0f} s) in {path}"
        )
    zone = ZoneInfo(settings.timezone)
    parts = [
        f"worker alive (pid {pid}, heartbeat {max(age, 0):.0f} s ago)",
        f"redis: {_part(beat.get('redis'), now, zone)}",
        f"postgres: {_part(beat.get('postgres'), now, zone)}",
        f"derivation: {_derivation(beat.get('derivation'), now, zone)}",
        f"schedules: {beat.get('schedules', 'unknown')}",
    ]
    return 0, "; ".join(parts)


def _part(part: Any, now: datetime, zone: ZoneInfo) -> str:
    if not isinstance(part, dict):
        return "unknown"
    state = str(part.get("state", "unknown"))
    if state == "up" or not part.get("since"):
        return state
    return f"{state} since {_clock_time(part['since'], now, zone)}"


def _derivation(derivation: Any, now: datetime, zone: ZoneInfo) -> str:
    if not isinstance(derivation, dict):
        return "unknown"
    if derivation.get("failing_since"):
        return f"failing since {_clock_time(derivation['failing_since'], now, zone)}"
    if derivation.get("last_pass_at"):
        ago = (now - datetime.fromisoformat(derivation["last_pass_at"])).total_seconds()
        return f"last pass {max(ago, 0):.0f} s ago"
    return "no pass yet"


def _clock_time(iso: str, now: datetime, zone: ZoneInfo) -> str:
    """Local wall time, with the date only when it is not today's."""
    at = datetime.fromisoformat(iso).astimezone(zone)
    today = now.astimezone(zone).date()
    return f"{at:%H:%M:%S}" if at.date() == today else f"{at:%Y-%m-%d %H:%M:%S}"
