"""Batches of dossier events read fast: the body decoded by msgspec straight into the rows the
store copies, under the rules of ``DossierEventIn``, and the answer encoded in one go.

``DossierEventIn`` (pydantic) states the rules and their messages; this module keeps them
without calling it per item. msgspec checks the JSON types, lengths and ranges while it
decodes; the rules it cannot state the way pydantic does are checked afterwards, column by
column: the patterns (one regular expression over a whole column), the times (parsed by
pydantic-core in one call, then the years and the two-year horizon), the notes (no NUL, no
whitespace to strip, scrubbed). An item that fails any of them is validated again by
``DossierEventIn`` itself, which accepts it or words its errors exactly as a single ``POST``
would; a body msgspec refuses at all (malformed, or an item of the wrong type) is read the way
every batch was before (:func:`app.dossiers.service.parse_items`). So an item is stored with
the same values, or refused with the same errors, whichever way it was read.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Annotated, Any

import msgspec
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from app.core.errors import item_errors
from app.dossiers.privacy import scrub
from app.dossiers.repository import EVENT_COLUMNS, row_of
from app.dossiers.schemas import (
    AHEAD,
    CODE_PATTERN,
    DOSSIER_CODE_PATTERN,
    EARLIEST,
    EVENT_FACTS,
    EVENT_ID_PATTERN,
    MAX_BATCH,
    PAYMENT_CODE_PATTERN,
    DossierEventIn,
)
from app.dossiers.service import Accepted, Ingested, rejected_item

_Count = Annotated[int, msgspec.Meta(ge=0, le=100_000)]
_Instant = str  # parsed by pydantic-core afterwards, as DossierEventIn parses it


class BatchEvent(msgspec.Struct, gc=False):
    """One item of a batch as msgspec reads it: the fields of ``DossierEventIn`` in the order
    of the stored columns, then the facts. Unknown fields are skipped, never kept."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    dossier_code: str
    unit_code: str
    procedure_code: str
    status: Annotated[int, msgspec.Meta(ge=1, le=10)]
    occurred_at: _Instant
    channel: Annotated[int, msgspec.Meta(ge=1, le=3)]
    due_at: _Instant | None = None
    received_at: _Instant | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    supplement_supplied_at: _Instant | None = None
    supplement_new_due_at: _Instant | None = None
    fee_paid_at: _Instant | None = None
    apology_issued_at: _Instant | None = None
    apology_new_due_at: _Instant | None = None
    applicant_kind: Annotated[int, msgspec.Meta(ge=1, le=4)] | None = None
    paid_online: bool | None = None
    has_digitized_parts: bool | None = None
    papers_total: _Count | None = None
    papers_with_file: _Count | None = None
    papers_digitised: _Count | None = None
    papers_reused: _Count | None = None
    papers_from_national_store: _Count | None = None
    fees_count: _Count | None = None
    fees_total: Annotated[int, msgspec.Meta(ge=0, le=10**15)] | None = None
    fees_all_zero: bool | None = None
    results_total: _Count | None = None
    results_with_file: _Count | None = None
    databases: Annotated[list[str], msgspec.Meta(max_length=50)] | None = None
    vneid_verified: bool | None = None
    payment_code: str | None = None

    @property
    def facts(self) -> dict[str, Any]:
        """``DossierEventIn.facts``, read off the struct's tuple (10,000 of them a batch)."""
        values = msgspec.structs.astuple(self)[_FACTS_FROM:]
        stated = (
            {}
            if values.count(None) == len(values)  # the usual event: none of these
            else {name: v for name, v in zip(EVENT_FACTS, values, strict=True) if v is not None}
        )
        if self.has_digitized_parts is not None:
            stated["has_digitised_parts"] = self.has_digitized_parts
        if self.applicant_kind is not None:
            stated["applicant_kind"] = self.applicant_kind
        return stated


_FACTS_FROM = len(EVENT_COLUMNS)
assert BatchEvent.__struct_fields__[:_FACTS_FROM] == EVENT_COLUMNS, "stored columns first"
assert BatchEvent.__struct_fields__[_FACTS_FROM:] == EVENT_FACTS, "then the facts, in order"
assert set(BatchEvent.__struct_fields__) == set(DossierEventIn.model_fields), "every field read"


class _EveryField(BatchEvent, forbid_unknown_fields=True):
    """A batch item with no field unknown to events (see :func:`decode`)."""


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[_EveryField]


_DECODER = msgspec.json.Decoder(_Batch)
_TIMES = (
    "occurred_at", "due_at", "received_at", "supplement_supplied_at", "supplement_new_due_at",
    "fee_paid_at", "apology_issued_at", "apology_new_due_at",
)  # fmt: skip
_TIMES_OF = attrgetter(*_TIMES)
_TIME_TEXT = TypeAdapter(list[AwareDatetime | None])
_SURELY_WRITTEN_IN_2000 = EARLIEST + timedelta(days=1)
_SEVEN_DECIMALS = re.compile(r"\.[0-9]{7}")


def _whole(pattern: str) -> re.Pattern[str]:
    """A schema pattern (``^…$``) for ``fullmatch``: Python's ``$`` would let a final newline
    through, which pydantic's does not."""
    assert pattern.startswith("^") and pattern.endswith("$")
    return re.compile(pattern[1:-1])


def _column(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """A column of values that each match ``pattern``, each followed by a newline."""
    return re.compile(f"(?:(?:{pattern.pattern})\n)*")


_EVENT_ID = _whole(EVENT_ID_PATTERN)
_DOSSIER_CODE = _whole(DOSSIER_CODE_PATTERN)
_CODE = _whole(CODE_PATTERN)
_PAYMENT_CODE = _whole(PAYMENT_CODE_PATTERN)
_COLUMNS = {p: _column(p) for p in (_EVENT_ID, _DOSSIER_CODE, _CODE, _PAYMENT_CODE)}


def decode(body: bytes, store_notes: bool) -> Accepted | None:
    """The batch in ``body``, its items checked and made ready to store; None when msgspec
    cannot read every byte of it as a batch of events (then parse it and call :func:`read`).

    No field unknown to an event is allowed here, so msgspec reads every value in the body
    and refuses what the API's JSON parser (orjson) refuses. A body with other fields, or with
    an item msgspec refuses, is parsed as JSON first, then read item by item."""
    try:
        events: Sequence[BatchEvent] = _DECODER.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None  # RecursionError: nested deeper than msgspec goes (orjson words it)
    if len(events) > MAX_BATCH:
        return None
    return _accepted(events, _fields_of, store_notes)


def _fields_of(_: int, event: BatchEvent | None) -> dict[str, Any]:
    """What an item said, read back off its struct (every field it had: none was unknown)."""
    assert event is not None
    return msgspec.structs.asdict(event)


def read(items: list[Any], store_notes: bool) -> Accepted:
    """A batch's items as parsed from JSON, checked and made ready to store."""
    try:
        events: list[BatchEvent | None] = list(msgspec.convert(items, list[BatchEvent]))
    except msgspec.ValidationError:
        events = [_converted(item) for item in items]
    return _accepted(events, lambda index, _: items[index], store_notes)


def _converted(item: Any) -> BatchEvent | None:
    try:
        return msgspec.convert(item, BatchEvent)
    except msgspec.ValidationError:
        return None  # DossierEventIn says why


def _accepted(
    events: Sequence[BatchEvent | None],
    raw: Callable[[int, BatchEvent | None], Any],
    store_notes: bool,
) -> Accepted:
    """The items read, checked by the rules msgspec did not state. An item msgspec refused
    (None), or that breaks one of these rules, is validated again by DossierEventIn on what it
    was (``raw``)."""
    read = [event for event in events if event is not None]
    misfits = _misfits(read)
    times = iter(zip(*[iter(_times(read, misfits))] * 8, strict=True))  # eight per item
    batch = Accepted([], [], [], {})
    if not misfits and len(read) == len(events):  # a clean batch: every item as read
        batch.indexes = list(range(len(read)))
        batch.events = list(read)
        batch.rows = [
            (n, e.event_id, e.dossier_code, e.unit_code, e.procedure_code, e.status, t[0],
             e.channel, t[1], t[2], e.note if e.note is None else _settled(e.note, store_notes),
             t[3], t[4], t[5], t[6], t[7], e.applicant_kind, e.paid_online,
             e.has_digitized_parts, False)
            for n, (e, t) in enumerate(zip(read, times, strict=True))
        ]  # fmt: skip
        return batch
    position = -1  # in ``read``
    for index, event in enumerate(events):
        if event is not None:
            position += 1
            t = next(times)
        if event is None or position in misfits:
            _validate(batch, index, raw(index, event), store_notes)
            continue
        note = event.note if event.note is None else _settled(event.note, store_notes)
        batch.indexes.append(index)
        batch.events.append(event)
        batch.rows.append(
            (len(batch.rows), event.event_id, event.dossier_code, event.unit_code,
             event.procedure_code, event.status, t[0], event.channel, t[1], t[2], note, t[3],
             t[4], t[5], t[6], t[7], event.applicant_kind, event.paid_online,
             event.has_digitized_parts, False)
        )  # fmt: skip
    return batch


def _settled(note: str, store_notes: bool) -> str | None:
    """A note as stored: scrubbed, or not kept at all (``CHISO_STORE_NOTES``)."""
    if not store_notes:
        return None
    return scrub(note) if note else note


def _misfits(events: Sequence[BatchEvent]) -> set[int]:
    """Items with a value outside a pattern, or a note DossierEventIn would change or refuse."""
    again: set[int] = set()
    ids, codes, units, procedures, notes, databases, payments = (
        (list(column) for column in zip(*map(_CHECKED_TEXT, events), strict=True))
        if events
        else ([],) * 7
    )
    _match(_EVENT_ID, ids, again)
    _match(_DOSSIER_CODE, codes, again)
    _match(_CODE, units, again)
    _match(_CODE, procedures, again)
    for index, note in enumerate(notes):
        if note and ("\x00" in note or note[0].isspace() or note[-1].isspace()):
            again.add(index)
    for index, listed in enumerate(databases):
        if listed is not None and not all(_CODE.fullmatch(code) for code in listed):
            again.add(index)
    for index, payment in enumerate(payments):
        if payment is not None and not _PAYMENT_CODE.fullmatch(payment):
            again.add(index)
    return again


_CHECKED_TEXT = attrgetter(
    "event_id", "dossier_code", "unit_code", "procedure_code", "note", "databases", "payment_code"
)


def _match(pattern: re.Pattern[str], values: list[str], again: set[int]) -> None:
    """Add to ``again`` the index of every value ``pattern`` does not match in whole."""
    distinct = set(values)
    column = "\n".join(distinct) + "\n"
    # A value holding a newline would pass as two: count them first.
    if column.count("\n") == len(distinct) and _COLUMNS[pattern].fullmatch(column):
        return
    again.update(i for i, value in enumerate(values) if not pattern.fullmatch(value))


def _times(events: Sequence[BatchEvent], again: set[int]) -> list[datetime | None]:
    """Every item's eight times, parsed (eight per item, in ``_TIMES`` order); the items with
    a time DossierEventIn refuses are added to ``again``."""
    texts = list(chain.from_iterable(map(_TIMES_OF, events)))
    try:
        times: list[datetime | None] = _TIME_TEXT.validate_python(texts)
    except ValidationError as exc:
        wrong = {int(error["loc"][0]) // 8 for error in exc.errors()}
        again.update(wrong)
        for index in wrong:
            texts[index * 8 : index * 8 + 8] = [None] * 8
        times = _TIME_TEXT.validate_python(texts)
    # The same instants from msgspec, with the standard library's time zones, which asyncpg
    # encodes twice as fast as pydantic's. msgspec rounds a seventh decimal of a second where
    # pydantic cuts it: then, and for text only pydantic reads, pydantic's values are kept.
    if not _SEVEN_DECIMALS.search("\n".join(filter(None, texts))):
        with contextlib.suppress(msgspec.ValidationError):
            times = msgspec.convert(texts, list[datetime | None])
    # Every time before two years from now and written in 2000 or later. The year is the one
    # written (local): an instant a day past 2000 begins is written in 2000 whatever its offset.
    stated = [t for t in times if t is not None]
    if stated and (min(stated) < _SURELY_WRITTEN_IN_2000 or max(stated) >= _horizon()):
        horizon = _horizon()
        for position, value in enumerate(times):
            if value is not None and (value.year < EARLIEST.year or value >= horizon):
                again.add(position // 8)
    return times


def _horizon() -> datetime:
    return datetime.now(UTC) + AHEAD


def _validate(batch: Accepted, index: int, raw: Any, store_notes: bool) -> None:
    """One item the checks above set aside, validated by DossierEventIn: kept with its values,
    or refused with its errors."""
    try:
        valid = DossierEventIn.model_validate(raw)
    except ValidationError as exc:
        errors = item_errors(exc.errors(), "/events", index)
        item = rejected_item(index, raw, errors)
        batch.rejected[index] = (index, item.event_id, "rejected", item.errors, None)
        return
    if not store_notes and valid.note is not None:
        valid = valid.model_copy(update={"note": None})
    batch.indexes.append(index)
    batch.events.append(valid)
    batch.rows.append(row_of(len(batch.rows), valid))


_INSTANT = TypeAdapter(datetime)


def _instant(at: datetime) -> str:
    """An instant as pydantic writes it (conflicts only: few)."""
    text: str = _INSTANT.dump_python(at, mode="json")
    return text


class _Item(msgspec.Struct, gc=False):
    """``ItemResult`` as the answer writes it."""

    index: int
    event_id: str | None
    result: str
    errors: list[dict[str, Any]] | None
    stored_at: str | None


def answer(outcome: Ingested, derived: bool) -> bytes:
    """The batch's answer (``BatchResult``), encoded without building a model per item."""
    counts = dict.fromkeys(("stored", "updated", "duplicate", "conflict", "rejected"), 0)
    counts.update(Counter(result for _, _, result, _, _ in outcome.outcomes))
    items = [
        _Item(index, event_id, result, errors, None if at is None else _instant(at))
        for index, event_id, result, errors, at in outcome.outcomes
    ]
    return msgspec.json.encode({**counts, "derived": derived, "items": items})
