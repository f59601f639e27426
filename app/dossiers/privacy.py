"""Personal-data minimisation: identity numbers, phone numbers and e-mails never reach storage.

Structured payload fields that could hold them are dropped by the schemas (unknown fields are
ignored); free text that is kept (notes) is scrubbed here.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Vietnamese mobile/landline numbers, with or without +84 and separators.
_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[\s.-]?\d){8,10}(?!\d)")
# Citizen identity (CCCD, 12 digits), old ID card (9 digits), tax codes (10/13): any long digit run.
_ID_NUMBER = re.compile(r"(?<!\d)\d{9,13}(?!\d)")


def scrub(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    return _ID_NUMBER.sub("[id]", text)
