"""Derive a dossier's state from its event history: pure rules, no I/O.

The history is always sorted by ``occurred_at`` first, so late or out-of-order delivery gives
the same state as in-order delivery. Rules follow indicator 2.1 of the service index (see
docs/DOMAIN.md): end time by terminal-status priority, pauses stop the clock, more than the
allowed number of supplement requests counts as overdue, withdrawals count only after
acceptance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from app.calendar.workdays import LimitUnit, WorkingCalendar
from app.dossiers.schemas import DossierStatus as S
from app.dossiers.schemas import Timeliness

_TERMINAL = {S.not_accepted, S.withdrawn, S.stopped, S.finished, S.returned}
_ACCEPTED = {S.accepted, S.processing, S.supplement_requested, S.financial_obligation,
             S.finished, S.returned}  # fmt: skip
_PAUSING: dict[int, str] = {
    S.supplement_requested: "supplement",
    S.financial_obligation: "financial",
}
_WORK_STEPS = {S.processing, S.supplement_requested, S.financial_obligation, S.finished,
               S.returned, S.stopped}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DossierRules:
    """Index rules that officials may change; configured, never hard-coded."""

    # More supplement requests than this → the dossier counts as overdue (indicator 2.1).
    max_supplement_requests: int = 1
    # A time stated later than the event's arrival by more than this is dated in the future
    # (a desk's clock may run a little ahead; a wrong date or year runs hours or days ahead).
    future_tolerance: timedelta = timedelta(minutes=15)


@dataclass(slots=True)
class EventRecord:
    """One stored event as derivation reads it (never changed once read: not frozen only
    because a frozen dataclass is built ~2 × slower, and a chunk builds ~15,000 of them)."""

    event_id: str
    status: int
    occurred_at: datetime
    channel: int
    unit_code: str
    procedure_code: str
    due_at: datetime | None = None
    received_at: datetime | None = None
    supplement_supplied_at: datetime | None = None
    supplement_new_due_at: datetime | None = None
    fee_paid_at: datetime | None = None
    apology_issued_at: datetime | None = None
    apology_new_due_at: datetime | None = None
    applicant_kind: int | None = None
    paid_online: bool | None = None
    has_digitized_parts: bool | None = None
    id: int = 0  # dossier_events.id: which stored events a state covers
    time_inferred: bool = False  # a portal record's status without its date
    recorded_at: datetime | None = None  # when chiso stored the event


@dataclass(frozen=True, slots=True)
class Limit:
    value: Decimal
    unit: LimitUnit


@dataclass(slots=True)
class PauseInterval:
    kind: str
    started_at: datetime
    ended_at: datetime | None = None
    new_due_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "new_due_at": self.new_due_at.isoformat() if self.new_due_at else None,
        }


@dataclass(slots=True)
class DossierState:
    code: str
    unit_code: str
    procedure_code: str
    status: int
    channel: int
    received_at: datetime | None
    base_due_at: datetime | None
    due_at: datetime | None
    end_at: datetime | None
    end_status: int | None
    outcome: Timeliness | None
    counted: bool
    clock_stopped_at: datetime | None
    overdue_at: datetime | None
    supplement_requests: int
    paused: timedelta
    pauses: list[PauseInterval]
    apology_issued_at: datetime | None
    apology_new_due_at: datetime | None
    anomalies: list[dict[str, Any]]
    applicant_kind: int | None
    paid_online: bool | None
    has_digitized_parts: bool | None
    first_event_at: datetime
    last_event_at: datetime
    event_count: int = field(default=0)
    derived_through: int | None = None


def order(events: Iterable[EventRecord]) -> list[EventRecord]:
    """The one order of a history: time, then status (accepted before processing), then id."""
    return sorted(events, key=lambda e: (e.occurred_at, e.status, e.event_id))


def _span(delta: timedelta) -> str:
    """``3 h 20 min`` / ``2 d 4 h``: how far ahead a time was stated, to the minute."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    return " ".join(parts)


def _end(history: Sequence[EventRecord], accepted: bool) -> EventRecord | None:
    """First terminal event by priority: finished > returned > stopped / not accepted.

    A withdrawal ends the dossier only after acceptance (before it, the dossier never counts).
    """
    by_status: dict[int, EventRecord] = {}
    for event in history:
        by_status.setdefault(event.status, event)
    for status in (S.finished, S.returned):
        if status in by_status:
            return by_status[status]
    closing = [by_status[s] for s in (S.stopped, S.not_accepted) if s in by_status]
    if closing:
        return min(closing, key=lambda e: e.occurred_at)
    if accepted and S.withdrawn in by_status:
        return by_status[S.withdrawn]
    return None


def derive(
    code: str,
    events: Iterable[EventRecord],
    limit: Limit | None,
    calendar: WorkingCalendar,
    rules: DossierRules,
    owner: str | None = None,
    *,
    ordered: bool = False,
) -> DossierState:
    """The state of dossier ``code`` from its whole history (``ordered``: already in
    :func:`order`'s order, as :func:`app.dossiers.service.derive_states` reads it)."""
    history = events if ordered and isinstance(events, list) else order(events)
    if not history:
        raise ValueError(f"dossier {code} has no events")
    last = history[-1]
    anomalies: list[dict[str, Any]] = []

    def flag(code_: str, detail: str, event: EventRecord | None = None) -> None:
        anomalies.append(
            {"code": code_, "detail": detail, "event_id": event.event_id if event else None}
        )

    # The dossier stays its owner's; a step by another unit of the owner's subtree is a
    # transfer (liên thông), listed where it happened.
    unit_code = owner or history[0].unit_code
    handled_by = unit_code
    for event in history:
        if event.unit_code != handled_by:
            flag("transfer", f"{handled_by} → {event.unit_code} (liên thông)", event)
            handled_by = event.unit_code
    for event in history:
        if event.time_inferred:
            flag("time_inferred",
                 f"status {event.status} came without its date: its time was taken from the "
                 "record's other dates or its arrival", event)  # fmt: skip
    for event in history:
        if event.recorded_at is None:
            continue
        for name in ("occurred_at", "received_at"):
            stated: datetime | None = getattr(event, name)
            if stated is not None and stated - event.recorded_at > rules.future_tolerance:
                flag("dated_in_future",
                     f"{name} {stated.isoformat()} is {_span(stated - event.recorded_at)} "
                     f"after the event reached chiso ({event.recorded_at.isoformat()})",
                     event)  # fmt: skip
    procedures = {e.procedure_code for e in history}
    if len(procedures) > 1:
        flag("procedure_changed", f"procedure_code differs: {sorted(procedures)}")

    statuses = {e.status for e in history}
    # The firsts the rules read, in one pass: the stated receipt and appointment, the
    # acceptance, the first work step, and the first step or refusal.
    explicit_receipt: datetime | None = None
    base_due_at: datetime | None = None
    acceptance = first_step = step_or_refusal = None
    for event in history:
        if explicit_receipt is None:
            explicit_receipt = event.received_at
        if base_due_at is None:
            base_due_at = event.due_at
        status = event.status
        if acceptance is None and status == S.accepted:
            acceptance = event
        if status in _WORK_STEPS:
            first_step = first_step or event
            step_or_refusal = step_or_refusal or event
        elif status == S.not_accepted:
            step_or_refusal = step_or_refusal or event
    received_at = explicit_receipt or (acceptance.occurred_at if acceptance else None)
    taken_in = acceptance
    if received_at is None:
        # No receipt stated: any later step means the desk did take the dossier in.
        taken_in = step_or_refusal
        received_at = taken_in.occurred_at if taken_in else None
    # A receipt time chiso placed itself (a portal record without NgayTiepNhan, at its
    # submission or its arrival): the dossier is not counted, as the portal counts no record
    # without NgayTiepNhan.
    receipt_inferred = explicit_receipt is None and taken_in is not None and taken_in.time_inferred
    accepted = explicit_receipt is not None or bool(statuses & _ACCEPTED)

    if explicit_receipt and first_step and explicit_receipt > first_step.occurred_at:
        flag("receipt_after_later_steps",
             "received_at is later than a processing step", first_step)  # fmt: skip

    end_event = _end(history, accepted)
    end_at = end_event.occurred_at if end_event else None
    withdrawn_unaccepted = S.withdrawn in statuses and not accepted

    # Pauses: a supplement (5) or financial-obligation (6) request stops the clock until the
    # papers are supplied / the fee is paid, or until any later step shows work resumed.
    pauses: list[PauseInterval] = []
    open_pause: PauseInterval | None = None
    supplement_requests = 0
    too_many_supplements_at: datetime | None = None
    for event in history:
        if end_at is not None and event.occurred_at > end_at:
            if event.status not in _TERMINAL:
                flag("status_after_end",
                     f"status {event.status} after the dossier ended", event)  # fmt: skip
            continue
        kind = _PAUSING.get(event.status)
        if event.status == S.supplement_requested:
            supplement_requests += 1
            if supplement_requests == rules.max_supplement_requests + 1:
                too_many_supplements_at = event.occurred_at
        if event.supplement_supplied_at is not None:
            if open_pause is not None and open_pause.kind == "supplement":
                open_pause.ended_at = max(event.supplement_supplied_at, open_pause.started_at)
                open_pause.new_due_at = event.supplement_new_due_at
                open_pause = None
            else:
                flag("supplied_without_request",
                     "papers supplied but no supplement request was open", event)  # fmt: skip
        paid = event.fee_paid_at
        if paid is not None and open_pause is not None and open_pause.kind == "financial":
            open_pause.ended_at = max(paid, open_pause.started_at)
            open_pause = None
        if kind is not None:
            if open_pause is None:
                open_pause = PauseInterval(kind=kind, started_at=event.occurred_at)
                pauses.append(open_pause)
                if event.supplement_new_due_at is not None:
                    open_pause.new_due_at = event.supplement_new_due_at
        elif open_pause is not None:
            open_pause.ended_at = event.occurred_at
            open_pause.new_due_at = open_pause.new_due_at or event.supplement_new_due_at
            open_pause = None

    if base_due_at is None and received_at is not None and limit is not None:
        base_due_at = calendar.due_at(received_at, limit.value, limit.unit)
    if base_due_at is not None and received_at is not None and base_due_at < received_at:
        flag("due_before_receipt", "the appointment is earlier than the receipt")
    if end_at is not None and received_at is not None and end_at < received_at:
        flag("end_before_receipt", "the dossier ended before it was received", end_event)

    due_at = base_due_at
    paused = timedelta(0)
    for pause in pauses:
        if pause.ended_at is None:
            continue
        worked = calendar.working_time_between(pause.started_at, pause.ended_at)
        paused += worked
        if due_at is None:
            continue
        due_at = pause.new_due_at or calendar.add_working_time(due_at, worked)

    counted = received_at is not None and not withdrawn_unaccepted and not receipt_inferred
    outcome: Timeliness | None = None
    if counted and end_at is not None and due_at is not None:
        if supplement_requests > rules.max_supplement_requests or end_at > due_at:
            outcome = Timeliness.late
        elif calendar.local_date(end_at) < calendar.local_date(due_at):
            outcome = Timeliness.early
        else:
            outcome = Timeliness.on_time

    clock_stopped_at = open_pause.started_at if open_pause and end_at is None else None
    overdue_at: datetime | None = None
    if counted and end_at is None and due_at is not None:
        # The instant the dossier turns overdue (what the daily sweep looks for): its due
        # time, unless the clock stopped before it; or the request one too many.
        candidates = [too_many_supplements_at]
        if clock_stopped_at is None or clock_stopped_at > due_at:
            candidates.append(due_at)
        overdue_at = min((c for c in candidates if c is not None), default=None)

    # The lasts, in one pass back: each fact as last stated, and the last apology.
    applicant_kind = paid_online = has_digitized_parts = None
    apology_event = None
    for event in reversed(history):
        if applicant_kind is None:
            applicant_kind = event.applicant_kind
        if paid_online is None:
            paid_online = event.paid_online
        if has_digitized_parts is None:
            has_digitized_parts = event.has_digitized_parts
        if apology_event is None and event.apology_issued_at is not None:
            apology_event = event
    return DossierState(
        code=code,
        unit_code=unit_code,
        procedure_code=last.procedure_code,
        status=last.status,
        channel=last.channel,
        received_at=received_at,
        base_due_at=base_due_at,
        due_at=due_at,
        end_at=end_at,
        end_status=end_event.status if end_event else None,
        outcome=outcome,
        counted=counted,
        clock_stopped_at=clock_stopped_at,
        overdue_at=overdue_at,
        supplement_requests=supplement_requests,
        paused=paused,
        pauses=pauses,
        apology_issued_at=apology_event.apology_issued_at if apology_event else None,
        apology_new_due_at=apology_event.apology_new_due_at if apology_event else None,
        anomalies=anomalies,
        applicant_kind=applicant_kind,
        paid_online=paid_online,
        has_digitized_parts=has_digitized_parts,
        first_event_at=history[0].occurred_at,
        last_event_at=last.occurred_at,
        event_count=len(history),
        derived_through=max(e.id for e in history),
    )


@dataclass(frozen=True, slots=True)
class Standing:
    timeliness: Timeliness | None
    overdue_by: Decimal | None


def standing(
    *,
    counted: bool,
    due_at: datetime | None,
    end_at: datetime | None,
    outcome: str | None,
    clock_stopped_at: datetime | None,
    supplement_requests: int,
    at: datetime,
    calendar: WorkingCalendar,
    rules: DossierRules,
    received_at: datetime | None = None,
    rewind: bool = False,
) -> Standing:
    """Timeliness at instant ``at``: finished dossiers keep their outcome; pending ones are
    in time or overdue, a stopped clock measured at the moment it stopped.

    ``rewind`` reads the stored state back at ``at`` (a period's end): a dossier received
    later does not count yet, one that ended later was still pending, a clock that stopped
    later was still running; the supplement requests are the history's. SQL states the same
    rule in :func:`app.dossiers.repository.overdue_sql`.
    """
    if rewind:
        if received_at is None or received_at > at:
            return Standing(None, None)
        if end_at is not None and end_at > at:
            end_at, outcome = None, None
        if clock_stopped_at is not None and clock_stopped_at > at:
            clock_stopped_at = None
    if not counted or due_at is None:
        return Standing(None, None)
    if end_at is not None:
        late = outcome == Timeliness.late
        by = calendar.working_days_between(due_at, end_at) if late else None
        return Standing(Timeliness(outcome) if outcome else None, by)
    measured_at = clock_stopped_at or at
    if measured_at > due_at:
        return Standing(Timeliness.overdue, calendar.working_days_between(due_at, measured_at))
    if supplement_requests > rules.max_supplement_requests:
        return Standing(Timeliness.overdue, Decimal("0.00"))
    return Standing(Timeliness.in_time, None)
