"""An async client for a portal adapter, in the protocol real one-stop systems speak.

``POST {adapter}{auth_path}`` with ``{username, password}`` → ``{error_code: 0, session}``, then
``POST {adapter}{integration_path}`` with ``{session, madonvi, service, ...}`` → ``{error_code,
message, result}``. ``error_code`` is read as a number, whether it comes as ``0`` or as ``"0"``
/ ``"00"`` (producers differ). Every call has a timeout; timeouts, connection errors, 5xx, 429
and ``error_code`` 8 (temporarily unavailable) are retried with exponential backoff and jitter
(429 and 503 honour ``Retry-After``) up to a bounded number of tries; an expired session
(``error_code`` 2) is renewed once and the call repeated.

The listing of changed dossiers is chiso's convention — no public source names the portal's —
so its service name and paging fields come from :class:`AdapterProtocol`, i.e. from settings.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.core.settings import PortalSourceSettings
from app.portal.envelope import PortalCode

logger = logging.getLogger("chiso.portal")

LIST_SERVICE = "LayDanhSachHoSo"  # chiso's name for the listing; configurable per source
LOOKUP_SERVICE = "TraCuuHoSo"
PROCEDURE_SERVICE = "LayThuTuc"
MAX_PAGE_SIZE = 500
SESSION_EXPIRED = PortalCode.session  # error_code: log in again


class PortalError(Exception):
    """The portal answered, but with an error we cannot retry our way out of."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class PortalUnavailable(PortalError):
    """The portal could not be reached (or kept failing) within the allowed tries."""


@dataclass(frozen=True, slots=True)
class AdapterProtocol:
    """Where an adapter takes its calls, and how its listing of changed dossiers is spelled."""

    auth_path: str = "/login"
    integration_path: str = "/service"
    list_service: str = LIST_SERVICE
    cursor_field: str = "cursor"  # sent: where to resume ("" = from the start); answered: next
    page_size_field: str = "sodong"
    remaining_field: str = "conlai"  # answered: records still waiting after this page
    records_field: str = "data"  # answered: the page's records


@dataclass(frozen=True, slots=True)
class PortalSource:
    """One configured adapter: where it is, who we are there and how it speaks."""

    name: str
    base_url: str
    username: str
    password: str
    madonvi: str | None = None
    page_size: int = 200
    protocol: AdapterProtocol = field(default_factory=AdapterProtocol)


def source_from_settings(settings: PortalSourceSettings) -> PortalSource:
    return PortalSource(
        name=settings.name,
        base_url=settings.base_url,
        username=settings.username,
        password=settings.password.get_secret_value(),
        madonvi=settings.madonvi,
        page_size=settings.page_size,
        protocol=AdapterProtocol(
            auth_path=settings.auth_path,
            integration_path=settings.integration_path,
            list_service=settings.list_service,
            cursor_field=settings.cursor_field,
            page_size_field=settings.page_size_field,
            remaining_field=settings.remaining_field,
            records_field=settings.records_field,
        ),
    )


@dataclass(frozen=True, slots=True)
class ChangedPage:
    records: list[Any]
    next_cursor: str | None  # where to resume after this page
    remaining: int | None  # records still waiting after this page (0 = caught up; None = untold)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_tries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 20.0


_RETRY_STATUS = {429, 500, 502, 503, 504}
_RETRY_AFTER_STATUS = {429, 503}


def error_code(value: Any) -> int | None:
    """The envelope's ``error_code`` as a number: ``0``, ``"0"`` and ``"00"`` are all success."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _count(value: Any) -> int | None:
    code = error_code(value)  # the same leniency: a count may come as a number or a string
    return code if code is not None and code >= 0 else None


class PortalClient:
    def __init__(
        self,
        source: PortalSource,
        http: httpx.AsyncClient,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.http = http
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._session: str | None = None
        self.retries = 0  # observable: how many retries this client made
        self.logins = 0  # observable: how many sessions this client opened

    @property
    def protocol(self) -> AdapterProtocol:
        return self.source.protocol

    def _url(self, path: str) -> str:
        return self.source.base_url.rstrip("/") + path

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self.policy.max_delay, self.policy.base_delay * 2.0**attempt)
        return delay * (0.5 + self.rng.random())

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        if not value:
            return None
        if value.strip().isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    async def _request(self, method: str, path: str, *, enveloped: bool, **kwargs: Any) -> Any:
        """One call's JSON answer, with retries on transport errors, 5xx, 429 (``Retry-After``)
        and, for enveloped answers, ``error_code`` 8 (the adapter says: try again later)."""
        last_error = "no attempt"
        for attempt in range(self.policy.max_tries):
            delay = self._backoff(attempt)
            try:
                response = await self.http.request(
                    method, self._url(path), timeout=self.policy.timeout, **kwargs
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status in _RETRY_AFTER_STATUS:
                    delay = max(delay, self._retry_after(response) or 0.0)
                if status in _RETRY_STATUS:
                    last_error = f"HTTP {status}"
                elif status >= 400:
                    raise PortalError(f"HTTP {status} from {path}")
                else:
                    try:
                        payload = response.json()
                    except ValueError as exc:
                        raise PortalError(f"{path} answered with invalid JSON") from exc
                    if not (
                        enveloped
                        and isinstance(payload, dict)
                        and error_code(payload.get("error_code")) == PortalCode.unavailable
                    ):
                        return payload
                    last_error = f"error_code 8: {payload.get('message') or 'unavailable'}"
                    delay = max(delay, self._retry_after(response) or 0.0)
            if attempt + 1 < self.policy.max_tries:
                self.retries += 1
                logger.info(
                    "portal call failed; retrying",
                    extra={"source": self.source.name, "error": last_error, "delay": delay},
                )
                await self.sleep(delay)
        raise PortalUnavailable(
            f"{self.source.name}: {path} failed {self.policy.max_tries} times ({last_error})"
        )

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = await self._request("POST", path, enveloped=True, json=body)
        if not isinstance(payload, dict):
            raise PortalError(f"{path} answered with {type(payload).__name__}, not an envelope")
        return payload

    async def login(self) -> str:
        payload = await self._post(
            self.protocol.auth_path,
            {"username": self.source.username, "password": self.source.password},
        )
        code = error_code(payload.get("error_code"))
        session = payload.get("session")
        if code != PortalCode.success or not isinstance(session, str) or not session:
            raise PortalError(f"login refused: {payload.get('message') or 'no message'}", code)
        self._session = session
        self.logins += 1
        return session

    async def call(self, service: str, **params: Any) -> Any:
        """Call a service; renews the session once if the portal says it expired."""
        for renewed in (False, True):
            session = self._session or await self.login()
            body = {"session": session, "madonvi": self.source.madonvi or "", "service": service}
            payload = await self._post(self.protocol.integration_path, {**body, **params})
            code = error_code(payload.get("error_code"))
            if code == PortalCode.success:
                return payload.get("result")
            if code == PortalCode.session and not renewed:
                self._session = None
                continue
            message = payload.get("message") or "no message"
            raise PortalError(
                f"{service}: error_code {payload.get('error_code')!r}: {message}", code
            )
        raise PortalError(f"{service}: session could not be renewed", PortalCode.session)

    async def changed_dossiers(self, cursor: str | None) -> ChangedPage:
        """One page of dossiers changed since ``cursor`` (``None`` = from the beginning)."""
        p = self.protocol
        size = min(self.source.page_size, MAX_PAGE_SIZE)
        result = await self.call(
            p.list_service, **{p.cursor_field: cursor or "", p.page_size_field: size}
        )
        records = result.get(p.records_field) if isinstance(result, dict) else None
        if not isinstance(records, list):
            raise PortalError(
                f"{p.list_service}: expected a result object with the list {p.records_field!r}"
            )
        next_cursor = result.get(p.cursor_field)
        if not isinstance(next_cursor, str) or not next_cursor:
            if records:  # resuming from the old cursor would fetch this page forever
                raise PortalError(
                    f"{p.list_service}: a page of records without {p.cursor_field!r} to resume from"
                )
            next_cursor = cursor  # caught up: nothing to move past
        return ChangedPage(
            records=records,
            next_cursor=next_cursor,
            remaining=_count(result.get(p.remaining_field)),
        )

    async def lookup(self, mahoso: str) -> dict[str, Any] | None:
        """``TraCuuHoSo``: the portal's record of one dossier, or None when it has none."""
        return self._first(LOOKUP_SERVICE, await self.call(LOOKUP_SERVICE, mahoso=mahoso))

    async def procedure(self, code: str) -> dict[str, Any] | None:
        """``LayThuTuc``: one procedure (``TENTTHC``, ``LINHVUCTHUCHIEN``...), or None."""
        return self._first(PROCEDURE_SERVICE, await self.call(PROCEDURE_SERVICE, maTTHC=code))

    @staticmethod
    def _first(service: str, result: Any) -> dict[str, Any] | None:
        # The answer is a list, empty when nothing matches; some adapters answer the object.
        if isinstance(result, list):
            if not result:
                return None
            result = result[0]
        if result is None:
            return None
        if not isinstance(result, dict):
            raise PortalError(f"{service}: unexpected result shape ({type(result).__name__})")
        return result

    async def evaluation_results(self, time_type: str, period: str) -> list[dict[str, Any]]:
        """Published index results of one period (``timeType`` month | quarter | year)."""
        data = await self._request(
            "GET",
            "/service-results",
            enveloped=False,
            params={"timeType": time_type, "period": period},
        )
        if not isinstance(data, list):
            raise PortalError("service-results: unexpected result shape")
        return data
