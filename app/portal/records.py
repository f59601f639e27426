"""The portal's dossier records (``DongBoHoSoMC``), read into our dossier events and facts.

A record is a snapshot of one dossier, not an event: the events are read off its dates. Real
producers leave gaps (a finished dossier without its end date, no channel, values outside the
documented sets, ISO dates in nested lists): such a record is stored with the best evidence
and notes saying what was taken from where, because refusing it would drop the dossier from
every count. A record is refused only when it cannot be a dossier at all. Pure functions,
shared by the portal endpoints and the portal sync worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, TypedDict, TypeVar, cast

import msgspec
from pydantic import ValidationError

from app.core.construct import constructed
from app.dossiers.facts import DossierFacts
from app.dossiers.privacy import scrub, scrub_value
from app.dossiers.schemas import (
    AHEAD,
    CODE_PATTERN,
    DOSSIER_CODE_PATTERN,
    EARLIEST,
    EVENT_ID_PATTERN,
    Channel,
    DossierEventIn,
    DossierStatus,
)
from app.portal.facts import DATABASES, FEES, PAPERS, RESULTS, read_facts
from app.portal.values import (
    COMPACT_TIME_FORMAT,
    PORTAL_TZ,
    REMEMBERED_CHARS,
    PortalFormatError,
    ValueReader,
    as_text,
    compact,
    horizon_after,
    json_type,
    parse_compact_time,
    parse_portal_time,
    scrubbed,
    shown,
)

__all__ = [
    "COMPACT_TIME_FORMAT",
    "PORTAL_TZ",
    "SUPPLEMENTS",
    "UNKNOWN_PROCEDURE",
    "ParsedRecord",
    "PortalFormatError",
    "PortalRecordError",
    "ProcedureSeen",
    "WireValue",
    "decode_records",
    "event_id",
    "minimised",
    "parse_compact_time",
    "parse_portal_batch",
    "parse_portal_time",
    "parse_records",
    "records_to_events",
]

SUPPLEMENTS = "DanhSachHoSoBoSung"
# The procedure of a record whose MaTTHC is empty or not a code.
UNKNOWN_PROCEDURE = "unknown"
ARRIVAL = "arrival"  # the evidence named in notes when a time is the record's arrival

_CODE = re.compile(CODE_PATTERN)
_DOSSIER_CODE = re.compile(DOSSIER_CODE_PATTERN)
# A supplement request's own id, when it is safe inside an event id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,47}")
_NAME_CHARS = 1000  # TenTTHC, TenLinhVuc

S = DossierStatus
_CLOSING = {S.not_accepted, S.withdrawn, S.stopped}
# Where a terminal status finds its time: its own fields (a plain fact), then the record's other
# end dates (evidence: the event is marked inferred and a note says so), then the arrival.
_END_TIME: dict[DossierStatus, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # A refusal's own dates are both NgayKetThucXuLy (what producers have long sent) and
    # NgayTuChoi (the refusal date): either is the fact, not a guess.
    S.not_accepted: (("NgayKetThucXuLy", "NgayTuChoi"), ()),
    S.withdrawn: (("NgayKetThucXuLy",), ("NgayTuChoi", "NgayTra")),
    S.stopped: (("NgayKetThucXuLy",), ("NgayTuChoi", "NgayTra")),
    S.finished: (("NgayKetThucXuLy",), ("NgayTra",)),
    S.returned: (("NgayTra",), ("NgayKetThucXuLy",)),
}
_CHANNELS = {str(channel.value): channel for channel in Channel}
_STATUSES = {str(status.value): status for status in DossierStatus}
_PAYMENT = {"0": False, "1": True, "2": True, "true": True, "false": False}


class PortalRecordError(ValueError):
    """A record that cannot be a dossier; ``errors`` are ``{"pointer", "detail"}`` items.

    Details quote the sender's values scrubbed: they are answered, logged and quarantined, and
    a value in the wrong field may be a phone or an identity number.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"portal dossier record rejected ({len(errors)} error(s))")
        self.errors = [{**error, "detail": scrub(error["detail"])} for error in errors]


@dataclass(frozen=True, slots=True)
class ProcedureSeen:
    """The procedure as the record names it: ``MaTTHC`` as sent (national or a local variant),
    and what is needed to learn it when chiso has never seen it."""

    code: str
    name: str | None = None  # TenTTHC
    field_code: str | None = None  # MaLinhVuc
    field_name: str | None = None  # TenLinhVuc


@dataclass(slots=True)  # one per record, thousands a call: not frozen (see DossierFacts)
class ParsedRecord:
    """What one record says: its events (sorted by time, then status; ``fields``, or built as
    ``events``), whether chiso had to infer each event's time (``inferred[i]`` for
    ``fields[i]``), notes on what was odd, the index facts, the unit token and the procedure.

    ``unit_token`` is the ``MaHoSo`` prefix (text before the first ``-``), ``None`` when there
    is none. The events carry a provisional ``unit_code``: ``?madonvi=`` when given, else the
    record's ``MaDonVi`` (no real producer sends it; accepted as a last resort), else the
    prefix. The caller resolves the prefix first, then ``madonvi``, then ``unit_declared``.
    """

    dossier_code: str
    fields: list[EventFields]  # each event's values, as its DossierEventIn holds them
    inferred: list[bool]
    notes: list[str]
    facts: DossierFacts
    unit_token: str | None
    procedure: ProcedureSeen
    unit_declared: str | None = None  # the record's MaDonVi, when it is a code

    @property
    def events(self) -> list[DossierEventIn]:
        """The events, built from ``fields`` as validation builds them. Ingestion stores the
        values themselves (``app.portal.service``): a call's thousands of events are never
        built as models there."""
        return [constructed_event(values) for values in self.fields]


@dataclass(slots=True)  # built thousands of times a batch: not frozen
class _Implied:
    """One event the snapshot implies; ``key`` makes its id (see :func:`event_id`)."""

    status: DossierStatus
    occurred_at: datetime
    key: str
    inferred: bool = False
    received_at: datetime | None = None
    due_at: datetime | None = None
    supplement_supplied_at: datetime | None = None
    supplement_new_due_at: datetime | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def event_id(dossier_code: str, key: str) -> str:
    """``portal:{MaHoSo}:{key}``. A status that happens once per dossier is its own key (``2``,
    ``9``, …): a re-sent record with a corrected (or inferred) time names the same event. A
    supplement request is ``5:{HoSoBoSungId or NgayBoSung}`` and its supply ``4:{the same}``.
    A time chiso inferred is never part of an id."""
    return f"portal:{dossier_code}:{key}"


def _pointer(index: int, path: str = "") -> str:
    return f"#/{index}/{path}" if path else f"#/{index}"


# --- what makes a record a dossier -------------------------------------------------------------


@dataclass(slots=True)  # built thousands of times a batch: not frozen
class _Identity:
    code: str
    procedure: ProcedureSeen
    status: DossierStatus | None
    received_at: datetime | None
    unit_code: str
    unit_token: str | None
    unit_declared: str | None


def _status(raw: Mapping[str, Any]) -> DossierStatus | str | None:
    """The status, ``None`` when blank, or why the value is not a status."""
    text = as_text(raw.get("TrangThaiHoSo"))
    if text is None:
        return f"expected a status code 1 to 10, got {json_type(raw.get('TrangThaiHoSo'))}"
    if not text:
        return None
    if text in _STATUSES:
        return _STATUSES[text]
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 10:
        return DossierStatus(int(text))
    return f"expected a status code 1 to 10, got {shown(text)}"


def _identity(
    raw: Mapping[str, Any], index: int, given: str | None, reader: ValueReader
) -> _Identity:
    """The fields without which a record is not a dossier; raises with every one missing.
    ``given``: the call's unit (:attr:`_Call.given`)."""
    errors: list[dict[str, str]] = []

    def refuse(path: str, detail: str) -> None:
        errors.append({"pointer": _pointer(index, path), "detail": detail})

    code = as_text(raw.get("MaHoSo"))
    if not code:
        refuse("MaHoSo", "MaHoSo is required")
    elif not _DOSSIER_CODE.match(code):
        refuse(
            "MaHoSo",
            f"{shown(code)} is not a dossier code: letters, digits and . _ : - only, at most 64",
        )
    procedure = reader.text(raw.get("MaTTHC"), "MaTTHC")
    if procedure is None or not _CODE.match(procedure):
        # OpenCPS sends "" for a procedure it has not mapped to a national code: the dossier
        # still counts for its unit (its deadline is NgayHenTra), under a code operators see.
        what = "empty" if procedure is None else f"{shown(procedure)} is not a code"
        reader.note(f"MaTTHC: {what}; stored under procedure {UNKNOWN_PROCEDURE!r}")
        procedure = UNKNOWN_PROCEDURE
    status = _status(raw)
    if isinstance(status, str):
        refuse("TrangThaiHoSo", status)
    received = reader.time(raw.get("NgayTiepNhan"), "NgayTiepNhan")
    if status is None and received is None:
        refuse(
            "TrangThaiHoSo",
            "TrangThaiHoSo and NgayTiepNhan are both empty: without a status or a receipt "
            "the record is not a dossier",
        )
        if "NgayTiepNhan" in reader.problems:
            refuse("NgayTiepNhan", reader.problems["NgayTiepNhan"])

    prefix, dash, _ = (code or "").partition("-")  # {identifier}-{yyMMdd}-{sequence}
    unit_token = prefix if dash and prefix else None
    declared = reader.text(raw.get("MaDonVi"), "MaDonVi")
    if declared and not _CODE.match(declared):
        reader.note(f"MaDonVi: {shown(declared)} is not a unit code; ignored")
        declared = None
    unit_code = given or declared or unit_token
    if unit_code is None and code and _DOSSIER_CODE.match(code):
        refuse(
            "MaHoSo",
            "no unit: MaHoSo has no identifier prefix ({identifier}-{yyMMdd}-{sequence}) and "
            "no madonvi was given",
        )
    if errors or not code or isinstance(status, str) or unit_code is None:
        raise PortalRecordError(errors)

    names = [raw.get(name) for name in _PROCEDURE_NAMES]
    if not all(value is None or type(value) is str for value in names):
        names = [reader.text(raw.get(name), name) for name in _PROCEDURE_NAMES]  # notes odd ones
    if all(value is None or len(value) <= REMEMBERED_CHARS for value in names):
        seen = _procedure_seen(procedure, *names)
    else:
        seen = _procedure(procedure, *names)
    return _Identity(
        code=code,
        procedure=seen,
        status=status,
        received_at=received,
        unit_code=unit_code,
        unit_token=unit_token,
        unit_declared=declared,
    )


_PROCEDURE_NAMES = ("TenTTHC", "MaLinhVuc", "TenLinhVuc")


def _procedure(
    code: str, name: str | None, field_code: str | None, field_name: str | None
) -> ProcedureSeen:
    """The procedure a record names, from its ``TenTTHC``, ``MaLinhVuc`` and ``TenLinhVuc`` as
    text (stripped here, scrubbed and cut) or ``None``."""

    def named(value: str | None) -> str | None:
        text = value.strip() if value else None
        return scrubbed(text)[:_NAME_CHARS] if text else None

    return ProcedureSeen(code, named(name), named(field_code), named(field_name))


# Remembered for names up to REMEMBERED_CHARS: a call's records name a few procedures, each
# many times.
_procedure_seen = lru_cache(maxsize=4096)(_procedure)


# --- the events a snapshot implies -------------------------------------------------------------


class _Snapshot:
    """One record's values, read once, and the events they imply."""

    def __init__(
        self, raw: Mapping[str, Any], who: _Identity, reader: ValueReader, arrived_at: datetime
    ) -> None:
        self.raw = raw
        self.who = who
        self.reader = reader
        self.arrived_at = arrived_at
        self.implied: list[_Implied] = []

    def time(self, name: str) -> datetime | None:
        return self.reader.time(self.raw.get(name), name)

    def evidence(self, fields: Sequence[str]) -> tuple[datetime, str]:
        """The first of ``fields`` the record states, else the arrival."""
        for name in fields:
            value = self.time(name)
            if value is not None:
                return value, name
        return self.arrived_at, ARRIVAL

    def add(self, implied: _Implied) -> None:
        self.implied.append(implied)

    def receipt(self) -> None:
        status, received = self.who.status, self.who.received_at
        due = self.time("NgayHenTra")
        if received is not None:
            if status in (S.registered, S.not_accepted):
                # Registered online but never accepted: NgayTiepNhan is the submission, and an
                # "accepted" event would be false (and would start a deadline).
                self.add(_Implied(S.registered, received, "1",
                                  sources={"occurred_at": "NgayTiepNhan"}))  # fmt: skip
                return
            self.add(
                _Implied(
                    S.accepted, received, "2", received_at=received, due_at=due,
                    sources={"occurred_at": "NgayTiepNhan", "received_at": "NgayTiepNhan",
                             "due_at": "NgayHenTra"},
                )
            )  # fmt: skip
            if status is S.processing:
                # The snapshot says "processing" but carries no time for it: the work started
                # no earlier than the receipt, so that is when we place it (the status order
                # puts it after the acceptance at the same instant).
                self.add(_Implied(S.processing, received, "4",
                                  sources={"occurred_at": "NgayTiepNhan"}))  # fmt: skip
            return
        if status in (S.registered, S.accepted, S.processing):
            # The status is the only evidence the dossier was taken in: placed at the
            # submission if stated, else when the record arrived.
            at, source = self.evidence(("NgayNopHoSo",))
            what = {S.registered: "registration", S.accepted: "receipt"}.get(status, "processing")
            self.reader.note(
                f"status {status.value} without NgayTiepNhan: {what} time taken from {source}"
            )
            self.add(
                _Implied(
                    status, at, str(status.value), inferred=True,
                    due_at=due if status is not S.registered else None,
                    sources={"occurred_at": source, "due_at": "NgayHenTra"},
                )
            )  # fmt: skip

    def supplements(self) -> None:
        entries = self.reader.entries(self.raw.get(SUPPLEMENTS), SUPPLEMENTS) or []
        keys: set[str] = set()
        open_requests = 0
        for j, entry in entries:
            path = f"{SUPPLEMENTS}/{j}"
            requested = self.reader.time(entry.get("NgayBoSung"), f"{path}/NgayBoSung")
            supplied = self.reader.time(
                entry.get("NgayTiepNhanBoSung"), f"{path}/NgayTiepNhanBoSung"
            )
            new_due = self.reader.time(entry.get("NgayHenTraMoi"), f"{path}/NgayHenTraMoi")
            if requested is None:
                self.reader.note(f"{path}: no NgayBoSung; the request is left out")
                continue
            request_id = as_text(entry.get("HoSoBoSungId")) or ""
            key = request_id if _REQUEST_ID.fullmatch(request_id) else compact(requested)
            if key in keys:
                self.reader.note(f"{path}: the same request as an earlier entry; left out")
                continue
            keys.add(key)
            self.add(
                _Implied(
                    S.supplement_requested, requested, f"5:{key}",
                    supplement_new_due_at=None if supplied else new_due,
                    sources={"occurred_at": f"{path}/NgayBoSung",
                             "supplement_new_due_at": f"{path}/NgayHenTraMoi"},
                )
            )  # fmt: skip
            if supplied is None:
                open_requests += 1
                continue
            self.add(
                _Implied(
                    S.processing, supplied, f"4:{key}",
                    supplement_supplied_at=supplied, supplement_new_due_at=new_due,
                    sources={"occurred_at": f"{path}/NgayTiepNhanBoSung",
                             "supplement_supplied_at": f"{path}/NgayTiepNhanBoSung",
                             "supplement_new_due_at": f"{path}/NgayHenTraMoi"},
                )
            )  # fmt: skip
        if self.who.status is S.supplement_requested and not open_requests:
            # Inventing a request would count one more (two requests = overdue): say it instead.
            self.reader.note(
                f"status 5 without an open request in {SUPPLEMENTS}: no pause recorded"
            )

    def end(self) -> None:
        status = self.who.status
        if status in _END_TIME:
            own, others = _END_TIME[status]
            at, source = self.evidence((*own, *others))
            inferred = source not in own
            if inferred:
                self.reader.note(
                    f"status {status.value} without {' or '.join(own)}: "
                    f"end time taken from {source}"
                )
            self.add(_Implied(status, at, str(status.value), inferred=inferred,
                              sources={"occurred_at": source}))  # fmt: skip
        if status in _CLOSING:
            # NgayTra (papers handed back) is left out: "returned" would contradict the status.
            return
        # The other end dates a record states are events of their own.
        for own_status, name in ((S.finished, "NgayKetThucXuLy"), (S.returned, "NgayTra")):
            at_ = self.time(name)
            if at_ is not None and own_status is not status:
                self.add(_Implied(own_status, at_, str(own_status.value),
                                  sources={"occurred_at": name}))  # fmt: skip

    def fallback(self) -> None:
        """Statuses 5 and 6 with no receipt and no dated step: the dossier is being worked on
        (what both statuses pause), placed at the submission or the arrival."""
        if self.implied or self.who.status is None:
            return
        at, source = self.evidence(("NgayNopHoSo",))
        self.reader.note(
            f"status {self.who.status.value} without NgayTiepNhan: processing time taken "
            f"from {source}"
        )
        self.add(_Implied(S.processing, at, "4", inferred=True,
                          due_at=self.time("NgayHenTra"),
                          sources={"occurred_at": source, "due_at": "NgayHenTra"}))  # fmt: skip

    def read(self) -> list[_Implied]:
        if self.who.status is None:
            self.reader.note("TrangThaiHoSo is empty: the status is read from the dates")
        self.receipt()
        self.supplements()
        self.end()
        self.fallback()
        implied = sorted(self.implied, key=lambda i: (i.occurred_at, i.status))
        due = self.time("NgayHenTra")
        if (
            due is not None
            and implied
            and not any(i.due_at for i in implied)
            and self.who.status not in (S.registered, S.not_accepted)
        ):
            # No receipt to carry the appointment: the first event carries it, since the
            # dossier's deadline is its first stated due time.
            first = implied[0]
            implied[0] = _Implied(
                first.status, first.occurred_at, first.key, first.inferred, first.received_at,
                due, first.supplement_supplied_at, first.supplement_new_due_at,
                {**first.sources, "due_at": "NgayHenTra"},
            )  # fmt: skip
        return implied


# --- events ------------------------------------------------------------------------------------

# Where each DossierEventIn field comes from, when the same for every event of a record.
_EVENT_FIELD_SOURCES = {
    "event_id": "MaHoSo",
    "dossier_code": "MaHoSo",
    "procedure_code": "MaTTHC",
    "channel": "KenhThucHien",
    "applicant_kind": "LoaiDoiTuong",
    "paid_online": "DuocThanhToanTrucTuyen",
    "has_digitized_parts": "HoSoCoThanhPhanSoHoa",
}


@dataclass(slots=True)  # built thousands of times a batch: not frozen
class _Common:
    """The values every event of a record shares."""

    channel: Channel
    applicant_kind: int | None
    paid_online: bool | None
    has_digitized_parts: bool | None


def _common(raw: Mapping[str, Any], facts: DossierFacts, reader: ValueReader) -> _Common:
    channel_text = reader.text(raw.get("KenhThucHien"), "KenhThucHien")
    channel = _CHANNELS.get(channel_text or "1")
    if channel is None:
        reader.note(f"KenhThucHien: {shown(channel_text or '')} is not 1, 2 or 3; taken as 1")
        channel = Channel.in_person
    # (HinhThuc is how the result is returned, not the channel: it is a fact, not read here.)
    kind = facts.applicant_kind
    if kind is not None and not 1 <= kind <= 4:
        reader.note(f"LoaiDoiTuong: {kind} is not 1 to 4; kept as a fact only")
        kind = None
    paid: bool | None = None
    if facts.payment_code is not None:
        paid = _PAYMENT.get(facts.payment_code.lower())
        if paid is None:
            reader.note(
                f"DuocThanhToanTrucTuyen: {shown(facts.payment_code)} is not 0, 1 or 2; "
                "kept as sent, paid online unknown"
            )
    return _Common(channel, kind, paid, facts.has_digitised_parts)


def _whole(pattern: str) -> re.Pattern[str]:
    """A schema pattern (``^…$``) for ``fullmatch``, as pydantic reads it (no final newline)."""
    assert pattern.startswith("^") and pattern.endswith("$")
    return re.compile(pattern[1:-1])


_WHOLE_EVENT_ID = _whole(EVENT_ID_PATTERN)
_WHOLE_DOSSIER_CODE = _whole(DOSSIER_CODE_PATTERN)
_WHOLE_CODE = _whole(CODE_PATTERN)
_MAX_EVENT_ID = 128


def checks_pass(fields: dict[str, Any], now: datetime) -> bool:
    """Whether ``DossierEventIn`` takes these values as they are: the rules it states that the
    readers do not already keep (the patterns, the id's length, the times' range). The other
    fields are read into their types (statuses, channels, flags, applicant kinds 1 to 4)."""
    return codes_pass(fields["dossier_code"], fields["unit_code"], fields["procedure_code"]) and (
        _own_checks_pass(fields, _latest(now))
    )


def codes_pass(dossier_code: str, unit_code: str, procedure_code: str) -> bool:
    """The part of :func:`checks_pass` that every event of a record shares: its codes."""
    return bool(
        _WHOLE_DOSSIER_CODE.fullmatch(dossier_code)
        and _WHOLE_CODE.fullmatch(unit_code)
        and _WHOLE_CODE.fullmatch(procedure_code)
    )


def _latest(now: datetime) -> datetime:
    """The first instant an event may not be at, in the portal's zone as the record's times
    are: compared without converting each."""
    return (now + AHEAD).astimezone(PORTAL_TZ)


def _own_checks_pass(fields: dict[str, Any], latest: datetime) -> bool:
    """The rest of :func:`checks_pass`: the event's id and times (``latest``: :func:`_latest`)."""
    eid = fields["event_id"]
    if len(eid) > _MAX_EVENT_ID or not _WHOLE_EVENT_ID.fullmatch(eid):
        return False
    for name in _EVENT_TIMES:
        at = fields.get(name)
        if at is not None and not (at.year >= EARLIEST.year and at < latest):
            return False
    return True


_EVENT_TIMES = (
    "occurred_at", "due_at", "received_at", "supplement_supplied_at", "supplement_new_due_at",
)  # fmt: skip
# An event's values as ``DossierEventIn`` holds them, by field name: those a reader states.
EventFields = dict[str, Any]


def validated_fields(fields: EventFields) -> EventFields:
    """``fields`` as validation makes them (raises ``ValidationError``): the values a
    ``DossierEventIn`` built from them holds, for the same names."""
    event = DossierEventIn(**fields)
    return {name: getattr(event, name) for name in fields}


def constructed_event(fields: EventFields) -> DossierEventIn:
    """``DossierEventIn.model_construct(**fields)`` for values :func:`checks_pass` accepted: the
    instance validation would build (the same values, fields set and order), without
    validating again nor walking every field's default (model_construct's own cost)."""
    return constructed(DossierEventIn, fields)


def _build_event(
    who: _Identity, common: _Common, implied: _Implied, index: int, latest: datetime | None
) -> EventFields | list[dict[str, str]]:
    """The values of the event ``implied`` states, or why validation refuses them; ``latest``
    (:func:`_latest`) is ``None`` when the record's codes do not pass (:func:`codes_pass`):
    validation then words why."""
    fields: dict[str, Any] = {
        "event_id": event_id(who.code, implied.key),
        "dossier_code": who.code,
        "unit_code": who.unit_code,
        "procedure_code": who.procedure.code,
        "status": implied.status,
        "occurred_at": implied.occurred_at,
        "channel": common.channel,
        "due_at": implied.due_at,
        "received_at": implied.received_at,
        "supplement_supplied_at": implied.supplement_supplied_at,
        "supplement_new_due_at": implied.supplement_new_due_at,
        "applicant_kind": common.applicant_kind,
        "paid_online": common.paid_online,
        "has_digitized_parts": common.has_digitized_parts,
    }
    if latest is not None and _own_checks_pass(fields, latest):
        return fields
    try:
        return validated_fields(fields)
    except ValidationError as exc:  # a value the readers let through but events refuse
        sources = {**_EVENT_FIELD_SOURCES, "unit_code": "MaHoSo", **implied.sources}
        errors = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            source = sources.get(name, "")
            if source == ARRIVAL:
                source = ""
            detail = f"{name}: {error['msg']}" if name else error["msg"]
            errors.append({"pointer": _pointer(index, source), "detail": detail})
        return errors


_E = TypeVar("_E", bound=Mapping[str, Any])


def unique_errors(errors: list[_E]) -> list[_E]:
    """Errors in order, each (pointer, detail) once."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for error in errors:
        key = (str(error.get("pointer", "")), str(error.get("detail", "")))
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique


@dataclass(frozen=True, slots=True)
class _Call:
    """What every record of one call reads the same: worked out once per call."""

    given: str | None  # the call's madonvi, when it is a code
    arrived: datetime  # in the portal's zone
    horizon: datetime  # the latest believable date (:func:`horizon_after`)
    latest: datetime  # the first instant an event may not be at (:func:`_latest`)


def _call(default_unit: str | None, arrived_at: datetime | None) -> _Call:
    arrived = (arrived_at if arrived_at is not None else datetime.now(UTC)).astimezone(PORTAL_TZ)
    unit = default_unit.strip() if default_unit else None
    return _Call(
        given=unit if unit and _CODE.match(unit) else None,
        arrived=arrived,
        horizon=horizon_after(arrived),
        # Checked a little before validation would check it: an event this rounds out is
        # validated, which tells the same (see _build_event).
        latest=_latest(datetime.now(UTC)),
    )


def records_to_events(
    raw: Any, index: int, default_unit: str | None, arrived_at: datetime | None = None
) -> ParsedRecord:
    """What one portal record says: its events, notes, facts, unit token and procedure.

    ``index`` is the record's place in the request body (for error pointers); ``default_unit``
    is the call's ``madonvi`` / ``MaDinhDanhDV``; ``arrived_at`` is the time of last resort for
    a status whose own date the record lacks (a progress item's time, or when the record
    arrived; now when not given). Raises :class:`PortalRecordError` only when the record cannot
    be a dossier: no ``MaHoSo``, a status outside 1–10, neither a status nor a receipt, or no
    unit at all.
    """
    return _record(raw, index, _call(default_unit, arrived_at))


def _record(raw: Any, index: int, call: _Call) -> ParsedRecord:
    """:func:`records_to_events` for a record of ``call``."""
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict: no ABC check
        detail = f"expected an object (one dossier record), got {json_type(raw)}"
        raise PortalRecordError([{"pointer": _pointer(index), "detail": detail}])
    reader = ValueReader(call.horizon)
    who = _identity(raw, index, call.given, reader)
    implied = _Snapshot(raw, who, reader, call.arrived).read()
    facts = read_facts(raw, reader)
    common = _common(raw, facts, reader)

    fields: list[EventFields] = []
    errors: list[dict[str, str]] = []
    latest = call.latest if codes_pass(who.code, who.unit_code, who.procedure.code) else None
    for item in implied:
        built = _build_event(who, common, item, index, latest)
        if isinstance(built, list):
            errors.extend(built)
        else:
            fields.append(built)
    if errors:
        raise PortalRecordError(unique_errors(errors))
    return ParsedRecord(
        dossier_code=who.code,
        fields=fields,
        inferred=[item.inferred for item in implied],
        notes=reader.notes,
        facts=facts,
        unit_token=who.unit_token,
        procedure=who.procedure,
        unit_declared=who.unit_declared,
    )


ParsedBatch = list[tuple[int, ParsedRecord | None, list[dict[str, str]] | None]]


def parse_records(
    raw_records: Sequence[Any], default_unit: str | None, arrived_at: datetime | None = None
) -> ParsedBatch:
    """Per record, in order: ``(index, parsed, None)`` or ``(index, None, errors)``."""
    call = _call(default_unit, arrived_at)
    results: ParsedBatch = []
    for index, raw in enumerate(raw_records):
        try:
            results.append((index, _record(raw, index, call), None))
        except PortalRecordError as exc:
            results.append((index, None, exc.errors))
    return results


def parse_portal_batch(
    raw_records: Sequence[Any], default_unit: str | None, arrived_at: datetime | None = None
) -> list[tuple[int, list[DossierEventIn] | None, list[dict[str, str]] | None]]:
    """:func:`parse_records` reduced to the events, for callers that need nothing else."""
    return [
        (index, parsed.events if parsed else None, errors)
        for index, parsed, errors in parse_records(raw_records, default_unit, arrived_at)
    ]


# --- what may be kept of a raw record ----------------------------------------------------------

# The record fields chiso reads, and within each list the fields it reads: everything else
# (owner, phones, e-mails, identity numbers, free text, who handled it) is dropped, and never
# read into memory when the call is read by :func:`decode_records`. A field's value is read as
# producers send one: text, a number within 64 bits, a boolean or null.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
WireValue = str | _Int64 | float | bool | None


class _SupplementFields(TypedDict, total=False):
    HoSoBoSungId: WireValue
    NgayBoSung: WireValue
    NgayTiepNhanBoSung: WireValue
    NgayHenTraMoi: WireValue


class _PaperFields(TypedDict, total=False):
    TepDinhKemId: WireValue
    IsDeleted: WireValue
    MaThanhPhanHoSo: WireValue
    DuongDanTaiTepTin: WireValue
    DuocSoHoa: WireValue
    DuocTaiSuDung: WireValue
    DuocLayTuKhoDMQG: WireValue
    MaKetQuaThayThe: WireValue


class _FeeFields(TypedDict, total=False):
    MaPhiLePhi: WireValue
    HinhThucThu: WireValue
    Gia: WireValue
    LoaiPhiLePhi: WireValue


class _ResultFields(TypedDict, total=False):
    MaThanhPhanHoSo: WireValue
    GiayToId: WireValue
    DuongDanTepTinKetQua: WireValue


class _DatabaseFields(TypedDict, total=False):
    MaCSDL: WireValue


class _RecordFields(TypedDict, total=False):
    MaHoSo: WireValue
    MaTTHC: WireValue
    TenTTHC: WireValue
    MaLinhVuc: WireValue
    TenLinhVuc: WireValue
    MaDonVi: WireValue
    KenhThucHien: WireValue
    HinhThuc: WireValue
    NoiNopHoSo: WireValue
    NgayNopHoSo: WireValue
    LoaiDoiTuong: WireValue
    NgayTiepNhan: WireValue
    NgayHenTra: WireValue
    TrangThaiHoSo: WireValue
    NgayKetThucXuLy: WireValue
    NgayTra: WireValue
    NgayTuChoi: WireValue
    DuocThanhToanTrucTuyen: WireValue
    HoSoCoThanhPhanSoHoa: WireValue
    TaiKhoanDuocXacThucVoiVNeID: WireValue
    DanhSachHoSoBoSung: list[_SupplementFields] | None
    TaiLieuNop: list[_PaperFields] | None
    DanhSachLePhi: list[_FeeFields] | None
    DanhSachGiayToKetQua: list[_ResultFields] | None
    DSKetNoiCSDL: list[_DatabaseFields | str] | None  # a bare list of codes means the same


_KEPT_IN_LISTS: dict[str, frozenset[str]] = {
    SUPPLEMENTS: frozenset(_SupplementFields.__annotations__),
    PAPERS: frozenset(_PaperFields.__annotations__),
    FEES: frozenset(_FeeFields.__annotations__),
    RESULTS: frozenset(_ResultFields.__annotations__),
    DATABASES: frozenset(_DatabaseFields.__annotations__),
}
_KEPT_FIELDS = frozenset(_RecordFields.__annotations__) - _KEPT_IN_LISTS.keys()
_RECORDS = msgspec.json.Decoder(list[_RecordFields])


def decode_records(data: bytes | msgspec.Raw) -> list[dict[str, Any]] | None:
    """A JSON array of records, each with only the fields chiso reads (``_RecordFields``); the
    rest (names, identity numbers, phones, file names) is skipped, not read into memory.
    ``None`` when a value is not of those shapes (an array where text belongs, an entry that is
    not an object, an integer beyond 64 bits, arrays nested thousands deep) or the data is not
    a JSON array: the caller then reads the data whole, and the record reader notes each odd
    value as it always does. Either way a record reads to the same events, facts and notes."""
    try:
        return cast(list[dict[str, Any]], _RECORDS.decode(data))
    except (msgspec.MsgspecError, RecursionError):  # nested past msgspec's depth: not a record
        return None


# A file's address is never kept; that there is one is (it is an index fact).
_FILE_ADDRESSES = frozenset({"DuongDanTaiTepTin", "DuongDanTepTinKetQua"})
FILE_PLACEHOLDER = "[file]"


def minimised(raw: Any) -> Any:
    """A raw record reduced to the portal fields chiso reads, every value scrubbed: what may be
    kept (e.g. in quarantine) without keeping the applicant's name, identity number, phone or
    e-mail, whatever fields they came in, nor file addresses. Reading the minimised record
    gives the same events and facts as the original. Every value kept is scrubbed, whatever
    its type: a malformed record may carry a phone in a date field, or a CCCD as a number."""
    if isinstance(raw, list):
        return [minimised(item) for item in raw]
    if not isinstance(raw, dict):
        return scrub_value(raw)

    def kept_value(key: str, value: Any) -> Any:
        if key in _FILE_ADDRESSES and value is not None:
            return FILE_PLACEHOLDER if as_text(value) != "" else ""
        return scrub_value(value)

    def kept_entry(key: str, entry: Any) -> Any:
        if isinstance(entry, dict):
            return {k: kept_value(k, v) for k, v in entry.items() if k in _KEPT_IN_LISTS[key]}
        if key == DATABASES and isinstance(entry, str):
            return scrub_value(entry)  # a bare list of database codes
        return None

    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _KEPT_IN_LISTS and isinstance(value, list):
            kept[key] = [kept_entry(key, entry) for entry in value]
        elif key in _KEPT_FIELDS or key in _KEPT_IN_LISTS:
            kept[key] = scrub_value(value)
    return kept
