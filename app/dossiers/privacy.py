"""Personal-data minimisation: identity numbers, phone numbers and e-mails never reach storage.

Structured payload fields that could hold them are dropped by the schemas (unknown fields are
ignored); free text that is kept (notes, quarantined portal records) is scrubbed here.

What is replaced, in the shapes people actually type them:

- ``[email]``: e-mail addresses, also written ``ten [at] mien [dot] vn``;
- ``[phone]``: mobiles and landlines, national (``0912 345 678``, ``(028) 3829 1234``) or
  international (``+84 912-345-678``, ``(+84) 912345678``, ``+84 (0) 912...``);
- ``[id]``: citizen identity numbers (CCCD, 12 digits), old identity cards (CMND, 9 digits),
  tax codes (10 digits, or 10 + ``-`` + 3 for a branch: a person's tax code *is* their CCCD
  number since 2025, so they share a placeholder), passports (a letter and 7 digits), health
  insurance cards and other long digit runs — with any spaces, dots or dashes between groups.

Deliberately kept: dossier and procedure codes, dates and times, amounts of money followed by
their currency, decree numbers, and service hotlines (1800/1900 numbers belong to offices, not
people). When a number is ambiguous the scrubber errs on the side of removing it.

Every pattern runs in linear time (no nested quantifiers over the same characters, bounded
repetitions) and number chains are classified in Python, so hostile input cannot make it slow.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

EMAIL: Final = "[email]"
PHONE: Final = "[phone]"
ID: Final = "[id]"

# A match may only start where a token starts: `ten.ho@...` as a whole, never `ho@...`.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+\s?@\s?[\w-]+(?:\.[\w-]+)+")
_AT = r"\s*[\[({<]\s*(?:at|@|a còng)\s*[\])}>]\s*"
_DOT = r"(?:\.|\s*[\[({<]\s*(?:dot|chấm)\s*[\])}>]\s*)"
_OBFUSCATED_EMAIL = re.compile(rf"(?<![\w.+-])[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
# Passports: one letter and 7 digits (`C1234567`, `B 1234567`); a lower-case letter only when
# written together, so prose like "tổ a 1234567" is left to the number rules.
_PASSPORT = re.compile(r"(?<![\w.\-/])(?:[A-Z] ?|[a-z])[0-9]{7}(?![\w]|[.\-/]\w)")
# Health insurance cards: two letters and 13 digits (`DN4010123456789`).
_INSURANCE_CARD = re.compile(r"(?<![\w.\-/])[A-Z]{2}[0-9]{13}(?!\w)")

# A chain of digit groups with one kind of separator, optionally led by an international
# prefix or an area code in parentheses. Classified (and maybe shortened) in `_classify`.
_SEP = r"[ .\-\u00a0]"
_CHAIN = (
    rf"(?:(?P<intl>\+\s?84|\(\+\s?84\)|\+\(84\)|00\s?84){_SEP}?(?:\(0\){_SEP}?)?"
    rf"|(?P<area>\(0[0-9]{{1,3}}\))\s?)?"
    rf"(?P<body>[0-9]+(?:(?P<sep>{_SEP})[0-9]+(?:(?P=sep)[0-9]+){{0,7}})?)"
)
# The lookahead first lets the engine skip to candidate characters quickly.
_NUMBER = re.compile(rf"(?=[0-9(+])(?<![\w.\-+]){_CHAIN}")
# The same, where a chain resumes right after a scrubbed one (`0912345678-0987654321`).
_NUMBER_HERE = re.compile(_CHAIN)

_ID_LABELS = (
    r"cccd|cmnd|cmtnd|cmt|cc|căn\s+cước(?:\s+công\s+dân)?|chứng\s+minh(?:\s+nhân\s+dân|\s+thư)?"
    r"|(?:số\s+)?định\s+danh(?:\s+cá\s+nhân)?|đdcn|mst|mã\s+số\s+thuế|msdn|mã\s+số\s+doanh\s+nghiệp"
    r"|bhxh|bhyt|hộ\s+chiếu|hc|passport|id"
)
_PHONE_LABELS = r"sđt|sdt|đt|dt|điện\s+thoại|di\s+động|dđ|tel|phone|mobile|zalo|fax"
_LABEL_TAIL = r"(?:\s*(?:số|no\.?|number|#))?\s*[:.\-=]?\s*(?:là\s+)?$"
_ID_LABEL = re.compile(rf"(?<![^\W\d_])(?:{_ID_LABELS}){_LABEL_TAIL}", re.IGNORECASE)
_PHONE_LABEL = re.compile(rf"(?<![^\W\d_])(?:{_PHONE_LABELS}){_LABEL_TAIL}", re.IGNORECASE)
_LABEL_WINDOW = 40

# `150.000.000 đồng` is money, not an identity card.
_CURRENCY = re.compile(r"\s?(?:đồng|vnđ|vnd|đ|₫)(?!\w)", re.IGNORECASE)
# The chain goes on as part of a code: `000.00.12.H01-...`, `1.001022.000.00.00.H01`,
# `123/QĐ-UBND`. Not a dash or a slash and digits: `0912345678-anh An`, `0912345678/0987654321`.
_CODE_GOES_ON = re.compile(r"[._/][^\W\d_]")
# The portal's compact times (`20260302080000`) are 14-digit runs too.
_COMPACT_TIME = re.compile(
    r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?:[01][0-9]|2[0-3])[0-5][0-9]{3}"
)


def scrub(text: str) -> str:
    """``text`` with every identity number, phone number and e-mail address replaced."""
    text = _EMAIL.sub(EMAIL, text)
    text = _OBFUSCATED_EMAIL.sub(EMAIL, text)
    text = _INSURANCE_CARD.sub(ID, text)
    text = _PASSPORT.sub(ID, text)
    return _scrub_numbers(text)


def scrub_value(value: Any) -> Any:
    """A JSON-like value with :func:`scrub` applied to every string in it (keys included) and to
    numbers that are identity or phone numbers (a CCCD sent as a JSON number loses its leading
    zero but is still one)."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        written = str(value)
        scrubbed = scrub(written)
        return value if scrubbed == written else scrubbed
    if isinstance(value, list | tuple):
        return [scrub_value(item) for item in value]
    if isinstance(value, dict):
        return {scrub(str(key)): scrub_value(item) for key, item in value.items()}
    return scrub(str(value))


def _scrub_numbers(text: str) -> str:
    out: list[str] = []
    pos = 0
    resume: int | None = None
    while True:
        found = _NUMBER_HERE.match(text, resume) if resume is not None else None
        found = found or _NUMBER.search(text, pos)
        resume = None
        if found is None:
            break
        end, placeholder = _classify(text, found)
        out.append(text[pos : found.start()])
        out.append(placeholder or text[found.start() : end])
        pos = end
        # `[phone]-0987...`: the next chain starts right after the separator.
        if placeholder and text[end : end + 1] in _SEPARATORS and text[end + 1 : end + 2].isdigit():
            resume = end + 1
    out.append(text[pos:])
    return "".join(out)


_SEPARATORS = frozenset(" .-\u00a0")


def _classify(text: str, found: re.Match[str]) -> tuple[int, str | None]:
    """How far the chain at ``found`` reaches and what replaces it (None: kept as it is).

    The end is always past ``found.start()``, so the scan moves on.
    """
    body_start = found.start("body")
    sep = found.group("sep") or ""
    groups = found.group("body").split(sep) if sep else [found.group("body")]
    # Where the chain would end after its first k groups.
    ends = []
    offset = body_start
    for group in groups:
        offset += len(group)
        ends.append(offset)
        offset += len(sep)
    intl, area = found.group("intl"), found.group("area")

    if intl is not None:
        for k in range(len(groups), 0, -1):
            national = "".join(groups[:k]).removeprefix("0")
            if _is_national_phone(national):
                return ends[k - 1], PHONE
        return body_start, None  # not a phone after all: look at the digits on their own
    if area is not None:
        for k in range(len(groups), 0, -1):
            if _phone_kind(area.strip("()") + "".join(groups[:k])):
                return ends[k - 1], PHONE
        return body_start, None

    if len(found.group("body")) - len(sep) * (len(groups) - 1) < 8:
        return ends[0], None  # dates, times, amounts, short codes: no personal number is this short
    after = text[found.end() : found.end() + 8]
    if sep == "-" and [len(group) for group in groups[:2]] == [10, 3]:
        return ends[1], ID  # a tax code and its branch: `0101234567-001`
    # Prefixes of the chain to try, longest first. A first group of 9 digits or more is a
    # number on its own: `CMND 187654321 500.000 đồng` holds an identity card and an amount.
    sizes = [1] if len(groups[0]) >= 9 else list(range(len(groups), 0, -1))
    label = _label_before(text, found.start())
    if label == "id":
        for k in sizes:
            if 8 <= len("".join(groups[:k])) <= 19:
                return ends[k - 1], ID
    if label == "phone":
        for k in sizes:
            digits = "".join(groups[:k])
            if 8 <= len(digits) <= 13 and not _is_hotline(digits):
                return ends[k - 1], PHONE
    if _is_money(groups, sep) and _CURRENCY.match(after):
        return found.end(), None
    if label is None and _CODE_GOES_ON.match(after):
        return found.end(), None  # part of a dossier, procedure or decision code
    if len(groups[0]) < 3 and not (groups[0] == "84" and len(groups) > 1):
        # `Phòng 3 0912 345 678`: a short number before a phone is not part of it.
        return ends[0], None
    # A phone first: `0912 345 678 2 lần` is a phone and a count, not an 11-digit number.
    for k in sizes:
        digits = "".join(groups[:k])
        if _is_hotline(digits):
            return ends[k - 1], None
        if _phone_kind(digits):
            return ends[k - 1], PHONE
    for k in sizes:
        if _is_identity("".join(groups[:k]), groups[:k]):
            return ends[k - 1], ID
    return ends[0], None


def _label_before(text: str, start: int) -> str | None:
    window = text[max(0, start - _LABEL_WINDOW) : start]
    # Every label ends in a letter, maybe followed by `:`, `.`, `-`, `=`, `#` and spaces: a
    # cheap test that spares the label patterns for chains inside lists of numbers.
    if not window.rstrip(" \t\u00a0:.-=#")[-1:].isalpha():
        return None
    window = unicodedata.normalize("NFC", window)
    if _ID_LABEL.search(window):
        return "id"
    if _PHONE_LABEL.search(window):
        return "phone"
    return None


def _is_national_phone(national: str) -> bool:
    """After +84 (and a dropped trunk 0): 9 digits of a mobile or 10 of a landline."""
    return (len(national) == 9 and national[0] in "35789") or (
        len(national) == 10 and national[0] == "2"
    )


def _phone_kind(digits: str) -> bool:
    if len(digits) == 10:  # mobile: 03x, 05x, 07x, 08x, 09x
        return digits[0] == "0" and digits[1] in "35789"
    if len(digits) == 11:  # landline 02x + 8 digits, a pre-2018 mobile 01x, or 84 + mobile
        return digits[:2] in ("02", "01") or (digits[:2] == "84" and digits[2] in "35789")
    if len(digits) == 12:  # 84 + landline
        return digits[:3] == "842"
    return False


def _is_hotline(digits: str) -> bool:
    return digits[:4] in ("1800", "1900") and len(digits) in (8, 10)


def _is_identity(digits: str, groups: list[str]) -> bool:
    if 9 <= len(digits) <= 13:  # CMND 9, tax code 10, CCCD 12, tax code with branch 13
        return True
    if 14 <= len(digits) <= 19:  # bank accounts and cards: a run, or in fours
        if len(groups) == 1:
            return not (len(digits) == 14 and _COMPACT_TIME.fullmatch(digits))
        return all(len(group) == 4 for group in groups)
    return False


def _is_money(groups: list[str], sep: str) -> bool:
    """One run, or thousands grouped by dots or spaces (`1.500.000`, `100 000 000`); never
    with a leading zero, which every CCCD has."""
    if groups[0].startswith("0"):
        return groups == ["0"]
    if len(groups) == 1:
        return True
    return (
        sep in (".", " ", "\u00a0")
        and 1 <= len(groups[0]) <= 3
        and all(len(group) == 3 for group in groups[1:])
    )
