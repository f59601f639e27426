"""Logs never carry SQL parameters, stored values or request bodies.

A database error quotes what it failed on: PostgreSQL's DETAIL line holds the whole failing row
("Failing row contains (..., 079085001234, ..., <the note>)"). The errors here are real ones,
raised by the test database, and reach the logs the way production logs them: the API's 500
handler, arq's job-failure log, the JSON handler of ``configure_logging`` and any other handler.
"""

from __future__ import annotations

import io
import json
import logging
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import create_pool
from arq.worker import Worker, func
from asgi_lifespan import LifespanManager
from fastapi import Body, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_engine, create_sessionmaker
from app.core.errors import describe_error, format_exception_safely
from app.core.observability import configure_logging, instrumented
from app.core.queue import redis_settings
from app.core.settings import Settings
from app.dossiers.models import DossierEvent
from app.main import create_app

CCCD = "079085001234"
NOTE = "Ông Nguyễn Văn An, CCCD 079.085.001.234, gọi 0912 345 678"
SECRETS = [CCCD, "079.085.001.234", "Nguyễn Văn An", "0912 345 678"]
# A row the status check refuses (a bug in our code would be needed to send it): PostgreSQL
# answers with the whole row in DETAIL.
BAD_ROW: dict[str, Any] = {
    "event_id": CCCD,
    "dossier_code": f"H01.01-{CCCD}",
    "unit_code": "H01.01",
    "procedure_code": "P3",
    "status": 11,
    "occurred_at": datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
    "channel": 1,
    "note": NOTE,
}
SQLSTATE_LINE = re.compile(r"SQLSTATE 23\d{3}")


@dataclass
class Logs:
    stream: io.StringIO
    caplog: pytest.LogCaptureFixture

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def everything(self) -> str:
        """The JSON lines and the same records through pytest's plain-text formatter."""
        return self.stream.getvalue() + "\n" + self.caplog.text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Logs]:
    """Logging configured as `chiso api` and `chiso worker` configure it, into a buffer; and
    pytest's own handler beside it, standing for any other formatter (uvicorn's, say)."""
    root = logging.getLogger()
    access = logging.getLogger("uvicorn.access")
    saved = (root.handlers[:], root.level, logging.getLogRecordFactory())
    saved_access = (access.handlers[:], access.propagate)
    stream = io.StringIO()
    configure_logging("INFO", json_logs=True, stream=stream)
    root.addHandler(caplog.handler)
    try:
        yield Logs(stream, caplog)
    finally:
        root.handlers[:], level, factory = saved
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        access.handlers[:], access.propagate = saved_access


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


async def _insert_bad_row(settings: Settings) -> sa_exc.IntegrityError:
    engine = create_engine(settings, settings.database_url or "")
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(DossierEvent).values(**BAD_ROW))
    except sa_exc.IntegrityError as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the row was accepted")


async def test_a_database_error_is_rendered_without_the_values_it_quotes(
    settings: Settings, clean: None
) -> None:
    error = await _insert_bad_row(settings)
    # What Python (and a plain logging handler) would print: the failing row, note included.
    assert leaked("".join(traceback.format_exception(error))) == SECRETS

    described = describe_error(error)
    assert described.startswith(
        "sqlalchemy.exc.IntegrityError: SQLSTATE 23514, table dossier_events, constraint "
        "ck_dossier_events_status_known (message withheld: it quotes values) "
        "[SQL: INSERT INTO dossier_events ("
    ), described
    rendered = format_exception_safely(error)
    assert rendered.startswith("Traceback (most recent call last):\n")
    assert "asyncpg.exceptions.CheckViolationError: SQLSTATE 23514, table dossier_events" in (
        rendered
    )
    assert "The above exception was the direct cause of the following exception:" in rendered
    assert rendered.endswith(described)
    assert "_insert_bad_row" in rendered  # the frames are all there
    assert leaked(described + rendered) == []


async def test_sql_parameters_never_appear_in_error_text(
    settings: Settings, engine: AsyncEngine, clean: None
) -> None:
    # A value too long for its column: no DETAIL line, only SQLAlchemy's rendering of the
    # parameters, which the app's engine hides.
    too_long = BAD_ROW | {"status": 2, "source": "x" * 17}
    failures = []
    app_engine = create_engine(settings, settings.database_url or "")
    for candidate in (engine, app_engine):  # the suite's own engine, then the app's
        try:
            async with candidate.begin() as conn:
                await conn.execute(insert(DossierEvent).values(**too_long))
        except sa_exc.DBAPIError as exc:
            failures.append(str(exc))
    await app_engine.dispose()
    bare, app = failures
    assert NOTE in bare  # without hide_parameters, "[parameters: (..., note, ...)]"
    assert "[SQL parameters hidden due to hide_parameters=True]" in app
    assert leaked(app) == []


async def test_a_500_logs_the_error_type_and_traceback_but_no_values_or_body(
    settings: Settings, logs: Logs, clean: None
) -> None:
    application = create_app(settings)

    # A planted bug: the route stores what it was sent without checking the status.
    async def store_unchecked(
        request: Request, payload: dict[str, Any] = Body(...)
    ) -> dict[str, str]:
        async with request.app.state.sessionmaker() as session:
            await session.execute(insert(DossierEvent).values(**(BAD_ROW | payload)))
            await session.commit()
        return {"stored": "yes"}

    application.add_api_route("/planted-bug", store_unchecked, methods=["POST"])
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as http,
    ):
        response = await http.post("/planted-bug", json={"note": NOTE, "event_id": CCCD})

    assert response.status_code == 500
    assert response.json() == {
        "type": "/problems/internal",
        "title": "Internal server error",
        "status": 500,
        "instance": "/planted-bug",
    }
    [entry] = [e for e in logs.entries() if e["msg"] == "unhandled error"]
    assert entry["level"] == "error" and entry["logger"] == "chiso.errors"
    assert entry["error"].startswith("sqlalchemy.exc.IntegrityError: SQLSTATE 23514"), entry
    assert entry["exc"].startswith("Traceback (most recent call last):\n")
    assert "in store_unchecked" in entry["exc"]
    assert SQLSTATE_LINE.search(entry["exc"].splitlines()[-1])
    assert leaked(logs.everything()) == [], logs.everything()


async def test_a_failed_worker_job_logs_the_error_type_but_no_values(
    settings: Settings, logs: Logs, clean: None
) -> None:
    engine = create_engine(settings, settings.database_url or "")

    async def store_unchecked(ctx: dict[str, Any]) -> None:
        async with create_sessionmaker(engine)() as session:
            await session.execute(insert(DossierEvent).values(**BAD_ROW))
            await session.commit()

    queue = "chiso:test-log-hygiene"
    pool = await create_pool(redis_settings(settings.redis_url or ""), default_queue_name=queue)
    worker = Worker(
        functions=[func(instrumented(store_unchecked), name="store_unchecked", max_tries=1)],  # type: ignore[arg-type]
        redis_settings=redis_settings(settings.redis_url or ""),
        queue_name=queue,
        burst=True,
        poll_delay=0.02,
        handle_signals=False,
    )
    try:
        await pool.enqueue_job("store_unchecked", _job_id="log-hygiene-1")
        await worker.main()
    finally:
        await worker.close()
        await pool.aclose()
        await engine.dispose()

    assert worker.jobs_failed == 1
    [entry] = [e for e in logs.entries() if "store_unchecked failed" in e["msg"]]
    assert re.search(
        r"log-hygiene-1:store_unchecked failed, IntegrityError: sqlalchemy\.exc\.IntegrityError: "
        r"SQLSTATE 23514, table dossier_events, constraint ck_dossier_events_status_known",
        entry["msg"],
    ), entry["msg"]
    assert "in store_unchecked" in entry["exc"]
    assert leaked(logs.everything()) == [], logs.everything()


def test_validation_errors_and_errors_in_extras_are_logged_without_input(logs: Logs) -> None:
    class Event(BaseModel):
        status: int

    log = logging.getLogger("chiso.test")
    try:
        Event.model_validate({"status": NOTE})
    except ValidationError as exc:
        log.exception("could not read an event")
        log.warning("could not read an event", extra={"error": exc})

    first, second = logs.entries()
    assert first["exc"].splitlines()[-1] == (
        "pydantic_core._pydantic_core.ValidationError: Event: status: "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    assert second["error"] == first["exc"].splitlines()[-1]
    assert leaked(logs.everything()) == [], logs.everything()
