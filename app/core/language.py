"""The language of an answer: Vietnamese, unless the client asks for English.

Texts written for people (the insights' messages, the headers of an exported file) come in
Vietnamese and English. JSON answers follow the request's ``Accept-Language`` (RFC 9110
§12.5.4): the language range with the highest weight that names Vietnamese (``vi``, ``vi-VN``)
or English (``en``, ``en-US``…) wins, the first listed on a tie; anything else (``fr``, ``*``,
no header) gets Vietnamese. Such answers say ``Content-Language`` and ``Vary: Accept-Language``,
and the response cache keys them by the language chosen here (:func:`negotiate`), so a cache
never hands one language's text to a client that asked for the other.

Exported files are opened by a click on a link, which cannot set a header: they take the
language from ``?lang=vi|en`` instead (``app/core/exports.py``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request

from app.core.vocabulary import named

Language = Literal["vi", "en"]
named(Language, {
    "vi": ("Tiếng Việt", "Vietnamese"),
    "en": ("Tiếng Anh", "English"),
}, title="Language")  # fmt: skip

DEFAULT: Language = "vi"
VARY = "Accept-Language"


def negotiate(header: str | bytes | None) -> Language:
    """The language of an ``Accept-Language`` header's value (Vietnamese by default)."""
    if not header:
        return DEFAULT
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    best: Language = DEFAULT
    best_weight = 0.0
    for part in text.split(","):
        tag, _, parameters = part.partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in ("vi", "en"):
            continue
        weight = _weight(parameters)
        if weight > best_weight:
            best, best_weight = ("vi" if primary == "vi" else "en"), weight
    return best


def _weight(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return 0.0
            return weight if 0.0 <= weight <= 1.0 else 0.0
    return 1.0


def of_request(request: Request) -> Language:
    """The language a JSON answer to ``request`` is written in."""
    return negotiate(request.headers.get("accept-language"))


def headers(language: Language) -> dict[str, str]:
    """The headers of an answer whose texts follow ``Accept-Language``."""
    return {"Content-Language": language, "Vary": VARY}
