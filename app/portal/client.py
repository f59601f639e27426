"""An async client for a dichvucong-style portal adapter.

The portal's integration style: ``POST {adapter}/login`` → ``{error_code: 0, session}``, then
``POST {adapter}/service`` with ``{session, madonvi, service, ...}`` → ``{error_code, message,
result}``. Every call has a timeout; timeouts, connection errors, 5xx and 429 are retried
with exponential backoff and jitter (429 honours ``Retry-After``) up to a bounded number of
tries; an expired session is renewed once and the call repeated.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

logger = logging.getLogger("chiso.portal")

LIST_CHANGED = "LayDanhSachHoSoThayDoi"
SESSION_EXPIRED = 2  # error_code the adapter answers for an unknown or expired session
MAX_PAGE_SIZE = 500


class PortalError(Exception):
    """The portal answered, but with an error we cannot retry our way out of."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class PortalUnavailable(PortalError):
    """The portal could not be reached (or kept failing) within the allowed tries."""


@dataclass(frozen=True, slots=True)
class PortalSource:
    """One configured adapter: where it is and who we are there."""

    name: str
    base_url: str
    username: str
    password: str
    madonvi: str | None = None
    page_size: int = 200


@dataclass(frozen=True, slots=True)
class ChangedPage:
    records: list[Any]
    next_cursor: str | None  # where to resume after this page
    remaining: int  # records still waiting after this page (0 = caught up)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_tries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 20.0


_RETRY_STATUS = {429, 500, 502, 503, 504}


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
        from datetime import UTC, datetime

        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with retries on transport errors, 5xx and 429 (``Retry-After``)."""
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
                if response.status_code not in _RETRY_STATUS:
                    if response.status_code >= 400:
                        raise PortalError(f"HTTP {response.status_code} from {path}")
                    return response
                last_error = f"HTTP {response.status_code}"
                if response.status_code == 429:
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

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise PortalError(f"{path} answered with invalid JSON") from exc

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = await self._json("POST", path, json=body)
        if not isinstance(payload, dict):
            raise PortalError(f"{path} answered with {type(payload).__name__}")
        return payload

    async def login(self) -> str:
        payload = await self._post(
            "/login", {"username": self.source.username, "password": self.source.password}
        )
        session = payload.get("session")
        if payload.get("error_code") != 0 or not isinstance(session, str):
            raise PortalError(
                f"login refused: {payload.get('message', 'no message')}",
                payload.get("error_code"),
            )
        self._session = session
        return session

    async def call(self, service: str, **params: Any) -> Any:
        """Call a service; renews the session once if the portal says it expired."""
        for renewed in (False, True):
            session = self._session or await self.login()
            body = {"session": session, "madonvi": self.source.madonvi, "service": service}
            payload = await self._post("/service", {**body, **params})
            code = payload.get("error_code")
            if code == 0:
                return payload.get("result")
            if code == SESSION_EXPIRED and not renewed:
                self._session = None
                continue
            raise PortalError(f"{service}: {payload.get('message', 'error')}", code)
        raise PortalError(f"{service}: session could not be renewed", SESSION_EXPIRED)

    async def changed_dossiers(self, cursor: str | None) -> ChangedPage:
        """One page of dossiers changed since ``cursor`` (``None`` = from the beginning)."""
        size = min(self.source.page_size, MAX_PAGE_SIZE)
        result = await self.call(LIST_CHANGED, cursor=cursor or "", sodong=size)
        if not isinstance(result, dict) or not isinstance(result.get("data"), list):
            raise PortalError(f"{LIST_CHANGED}: unexpected result shape")
        remaining = result.get("conlai")
        return ChangedPage(
            records=result["data"],
            next_cursor=result.get("cursor") or cursor,
            remaining=int(remaining)
            if isinstance(remaining, int | str) and str(remaining).isdigit()
            else 0,
        )

    async def evaluation_results(self, time_type: str, period: str) -> list[dict[str, Any]]:
        """Published index results of one period (``timeType`` month | quarter | year)."""
        data = await self._json(
            "GET", "/service-results", params={"timeType": time_type, "period": period}
        )
        if not isinstance(data, list):
            raise PortalError("service-results: unexpected result shape")
        return data
