"""The national portal's wire values (texts, flags, times, amounts), read the way real producers
send them. Pure functions: nothing here touches the database or the clock.

Producers differ: every value is meant to be a string, yet some send numbers, booleans or
``null``; dates are ``yyyyMMddHHmmss`` in Vietnam time, except that a .NET producer writes ISO
8601 without a zone in its nested lists. A value that cannot be read is not a reason to lose
the dossier: :class:`ValueReader` leaves it out and writes a note saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from app.dossiers.privacy import scrub
from app.dossiers.schemas import AHEAD

PORTAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
COMPACT_TIME_FORMAT = "%Y%m%d%H%M%S"

_COMPACT_TIME = re.compile(r"[0-9]{14}")
# ISO 8601 date-time as .NET writes it: seconds and fraction optional (up to 7 digits), zone
# optional (none means Vietnam time).
_ISO_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<h>[0-9]{2}):(?P<m>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,7}))?)?(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?"
)
# .NET's default(DateTime): what a C# producer writes for "no date".
_DOTNET_NO_DATE = re.compile(r"0001-01-01T00:00:00(?:\.0+)?Z?")
_SHOWN_CHARS = 40
# VND has no minor unit: "50.000" / "50,000" group thousands; a price is never 50 dong.
_GROUPED_AMOUNT = re.compile(r"[0-9]{1,3}(?:(?P<sep>[.,])[0-9]{3})(?:(?P=sep)[0-9]{3})*")
_PLAIN_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MAX_AMOUNT = Decimal(10) ** 15  # fees_total is numeric(18, 2)
# A flag's texts (stripped, lower case) and what each says.
FLAG_TEXTS: dict[str, bool] = {"1": True, "0": False, "true": True, "false": False}


# The longest text the readers' caches remember. A sender's value can be megabytes long (a
# call's body may be 32 MB), and thousands of them remembered would hold gigabytes in every
# API process: longer texts are worked out each time. Bound: 4,096 scrubbed texts, 8,192
# times and 4,096 procedures of three names, at most this many characters each.
REMEMBERED_CHARS = 1_000


def scrubbed(text: str) -> str:
    """:func:`scrub`, remembered (up to :data:`REMEMBERED_CHARS`): procedure names, codes and
    notes repeat across a batch."""
    return _scrubbed(text) if len(text) <= REMEMBERED_CHARS else scrub(text)


@lru_cache(maxsize=4096)
def _scrubbed(text: str) -> str:
    return scrub(text)


class PortalFormatError(ValueError):
    """A portal value that does not follow the portal's wire format."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def shown(value: str) -> str:
    """A sender's value quoted in a message, cut short."""
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…")


def compact(instant: datetime) -> str:
    """An instant as the portal writes it: ``yyyyMMddHHmmss`` in Vietnam time."""
    return instant.astimezone(PORTAL_TZ).strftime(COMPACT_TIME_FORMAT)


def _checked(field: str, text: str, parts: list[int], zone: tzinfo | None) -> datetime:
    year, month, day, hour, minute, second = parts
    if not 2000 <= year < 2100:
        raise PortalFormatError(field, f"year {year} is out of range (2000 to 2099)")
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise PortalFormatError(
            field, f"{shown(text)} is not a real date and time: {exc}"
        ) from None


def parse_compact_time(value: str, field: str) -> datetime | None:
    """``yyyyMMddHHmmss`` in Vietnam time → an aware datetime; blank → None."""
    text = value.strip()
    if not text:
        return None
    if not _COMPACT_TIME.fullmatch(text):
        raise PortalFormatError(field, f"expected yyyyMMddHHmmss, got {shown(value)}")
    return _compact_time(text, field)


def _compact_time(t: str, field: str) -> datetime:
    """Fourteen ASCII digits, ``yyyyMMddHHmmss`` in Vietnam time, as an instant. Not strptime,
    which accepts 1-digit months and days and could misread the run: read as the ISO 8601
    basic form (``yyyyMMddTHHmmss``, C code, a quarter faster), else sliced, which words what
    is wrong. Hour 24 is always sliced (and refused): a newer Python may read it as midnight."""
    if t[8:10] != "24":
        try:
            at = _from_iso(f"{t[:8]}T{t[8:]}")
        except ValueError:
            pass
        else:
            if 2000 <= at.year < 2100:
                return at.replace(tzinfo=PORTAL_TZ)
    parts = [int(t[:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]), int(t[12:14])]
    return _checked(field, t, parts, PORTAL_TZ)


_from_iso = datetime.fromisoformat


def parse_portal_time(value: str, field: str) -> datetime | None:
    """``yyyyMMddHHmmss`` or ISO 8601 (``2026-03-02T08:00:00[.fff]``, Vietnam time unless a zone
    is written; the fraction dropped) → an aware datetime; blank or .NET's
    ``0001-01-01T00:00:00`` → None."""
    text = value.strip()
    if len(text) == 14 and text.isascii() and text.isdigit():  # yyyyMMddHHmmss: nearly always
        return _compact_time(text, field)
    if not text or _DOTNET_NO_DATE.fullmatch(text):
        return None
    iso = _ISO_TIME.fullmatch(text)
    if iso is None:
        raise PortalFormatError(
            field, f"expected yyyyMMddHHmmss or an ISO 8601 date-time, got {shown(value)}"
        )
    year, month, day = (int(part) for part in iso["date"].split("-"))
    # A fraction of a second is dropped: the portal counts in seconds, and the same instant
    # sent again in yyyyMMddHHmmss must be the same value.
    parts = [year, month, day, int(iso["h"]), int(iso["m"]), int(iso["s"] or 0)]
    zone: tzinfo | None = PORTAL_TZ
    if iso["zone"]:
        zone = datetime.fromisoformat(f"2000-01-01T00:00:00{iso['zone']}").tzinfo
    return _checked(field, text, parts, zone)


def _read_time(text: str) -> tuple[datetime | None, str | None]:
    """:func:`parse_portal_time` of a stripped text: ``(instant, None)`` or ``(None, what is
    wrong)``. Remembered (up to :data:`REMEMBERED_CHARS`): a record reads its dates more than
    once (the field name is not part of the answer: a problem's wording does not depend on
    it)."""
    return _remembered_time(text) if len(text) <= REMEMBERED_CHARS else _time_of(text)


def _time_of(text: str) -> tuple[datetime | None, str | None]:
    try:
        return parse_portal_time(text, ""), None
    except PortalFormatError as exc:
        return None, exc.message


_remembered_time = lru_cache(maxsize=8192)(_time_of)


def as_text(value: Any) -> str | None:
    """A portal value as stripped text: ``None``/blank → ``""``; whole numbers and booleans
    become text; ``None`` is returned when the value is not a scalar at all."""
    if type(value) is str:  # what producers send nearly always
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else None


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else type(value).__name__


class ValueReader:
    """Reads one record's values; what it cannot read it leaves out, with a note.

    Notes are ``"{path}: {what}"`` in English, scrubbed of identity data (a value quoted back
    may be a phone number typed into a date field), each written once. ``horizon`` is the
    latest believable instant (``None``: no limit): a date beyond it is a typo (2062 for 2026),
    not a plan.
    """

    def __init__(self, horizon: datetime | None) -> None:
        self.horizon = horizon
        self.notes: list[str] = []
        self.problems: dict[str, str] = {}  # path → what was wrong with its value

    def note(self, message: str) -> None:
        text = scrubbed(message)
        if text not in self.notes:
            self.notes.append(text)

    def _ignored(self, path: str, problem: str) -> None:
        self.problems.setdefault(path, problem)
        self.note(f"{path}: {problem}; ignored")

    def text(self, value: Any, path: str) -> str | None:
        """Stripped text, ``None`` when blank or absent."""
        if type(value) is str:
            return value.strip() or None
        text = as_text(value)
        if text is None:
            self._ignored(path, f"expected text, got {json_type(value)}")
            return None
        return text or None

    def time(self, value: Any, path: str) -> datetime | None:
        text = value.strip() if type(value) is str else self.text(value, path)
        if not text:
            return None
        parsed, problem = _read_time(text)
        if problem is not None:
            self._ignored(path, problem)
            return None
        if parsed is not None and self.horizon is not None and parsed >= self.horizon:
            self._ignored(path, f"{shown(text)} is more than two years ahead")
            return None
        return parsed

    def flag(self, value: Any, path: str) -> bool | None:
        """``"1"``/``"0"`` (also ``true``/``false``); blank → ``None``."""
        if value == "1":  # what producers send nearly always (a string: 1 and True are not)
            return True
        if value == "0":
            return False
        text = self.text(value, path)
        if text is None:
            return None
        flag = FLAG_TEXTS.get(text.lower())
        if flag is None:
            self._ignored(path, f"expected '1', '0' or '', got {shown(text)}")
        return flag

    def small_int(self, value: Any, path: str, low: int = 0, high: int = 32767) -> int | None:
        text = self.text(value, path)
        if text is None:
            return None
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            self._ignored(path, f"expected a number from {low} to {high}, got {shown(text)}")
            return None
        return int(text)

    def amount(self, value: Any, path: str) -> Decimal | None:
        """A price in dong: ``50000``, ``"50000"``, ``"50.000"``/``"50,000"`` (thousands),
        ``"50000.00"``. Blank → ``None`` without a note (no price stated)."""
        if type(value) is str and value.isascii() and value.isdigit() and len(value) < 16:
            return Decimal(value)  # "50000": what producers nearly always send
        if isinstance(value, float) and not isinstance(value, bool):
            text: str | None = repr(value)
        else:
            text = self.text(value, path)
        if text is None:
            return None
        cleaned = text.replace(" ", "").replace("\u00a0", "")
        grouped = _GROUPED_AMOUNT.fullmatch(cleaned)
        amount: Decimal | None = None
        try:
            if grouped is not None and grouped["sep"]:
                amount = Decimal(cleaned.replace(grouped["sep"], ""))
            elif _PLAIN_AMOUNT.fullmatch(cleaned):
                amount = Decimal(cleaned)
        except InvalidOperation:  # pragma: no cover - the patterns only pass decimal text
            amount = None
        if amount is None or amount >= _MAX_AMOUNT:
            self._ignored(path, f"expected an amount in dong, got {shown(text)}")
            return None
        return amount

    def entries(self, value: Any, path: str) -> list[tuple[int, Mapping[str, Any]]] | None:
        """The objects of a list field with their places; ``None`` when the field is absent
        or ``null`` (the producer does not send it), ``[]`` when sent empty."""
        if value is None:
            return None
        if not isinstance(value, list):
            self._ignored(path, f"expected an array, got {json_type(value)}")
            return None
        kept = []
        for j, entry in enumerate(value):
            if type(entry) is dict or isinstance(entry, Mapping):  # a dict: no ABC check
                kept.append((j, entry))
            else:
                self._ignored(f"{path}/{j}", f"expected an object, got {json_type(entry)}")
        return kept


def horizon_after(arrived_at: datetime) -> datetime:
    """The latest believable date in a record that arrived at ``arrived_at``: what
    ``DossierEventIn`` enforces, less a day, since the event is checked a little later."""
    return arrived_at + AHEAD - timedelta(days=1)
