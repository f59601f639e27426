"""What a state takes from its history when events disagree or steps are missing, worked by
hand on :func:`app.dossiers.timeline.derive` itself (no database): the facts as last stated,
the receipt from the first step when none is stated, and the same state whatever order the
events come in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.calendar.data import load_shipped_overrides
from app.calendar.workdays import WorkingCalendar
from app.dossiers.schemas import DossierStatus as S
from app.dossiers.timeline import DossierRules, EventRecord, derive, order
from tests.helpers import vn

CALENDAR = WorkingCalendar(overrides=load_shipped_overrides(), years=range(2025, 2028))
RULES = DossierRules()
CODE = "H01-260302-0001"


def _event(event_id: str, status: S, at: str, **fields: Any) -> EventRecord:
    return EventRecord(event_id, int(status), vn(at), 1, "H01", "P1", **fields)


def test_each_fact_is_taken_as_last_stated_and_the_last_apology_wins() -> None:
    history = [
        _event("a", S.accepted, "2026-03-02 08:00", applicant_kind=1, paid_online=True,
               has_digitized_parts=False),
        _event("b", S.processing, "2026-03-02 09:00", applicant_kind=2,
               apology_issued_at=vn("2026-03-03 08:00"),
               apology_new_due_at=vn("2026-03-06 17:00")),
        _event("c", S.processing, "2026-03-03 09:00", has_digitized_parts=True,
               apology_issued_at=vn("2026-03-04 08:00"),
               apology_new_due_at=vn("2026-03-09 17:00")),
        _event("d", S.processing, "2026-03-04 09:00"),  # states nothing: changes nothing
    ]  # fmt: skip
    state = derive(CODE, history, None, CALENDAR, RULES)
    assert (state.applicant_kind, state.paid_online, state.has_digitized_parts) == (2, True, True)
    assert (state.apology_issued_at, state.apology_new_due_at) == (
        vn("2026-03-04 08:00"), vn("2026-03-09 17:00"),
    )  # fmt: skip


def test_without_a_stated_receipt_the_first_step_or_refusal_is_the_receipt() -> None:
    # Refused at once: the desk took it in to refuse it, at the refusal.
    refused = derive(CODE, [_event("r", S.not_accepted, "2026-03-02 10:00")], None, CALENDAR, RULES)
    assert (refused.received_at, refused.end_at, refused.counted) == (
        vn("2026-03-02 10:00"), vn("2026-03-02 10:00"), True,
    )  # fmt: skip
    # No acceptance sent: the first work step (processing at 09:00), not the later end.
    worked = [
        _event("f", S.finished, "2026-03-03 15:00"),
        _event("p", S.processing, "2026-03-02 09:00"),
        _event("n", S.registered, "2026-03-01 20:00"),
    ]
    state = derive(CODE, worked, None, CALENDAR, RULES)
    assert (state.received_at, state.end_at) == (vn("2026-03-02 09:00"), vn("2026-03-03 15:00"))
    # A stated receipt wins over both, and the first one stated of two.
    stated = [
        _event("a", S.accepted, "2026-03-02 08:00"),
        _event("p", S.processing, "2026-03-02 09:00", received_at=vn("2026-03-02 07:30")),
        _event("q", S.processing, "2026-03-02 10:00", received_at=vn("2026-03-02 07:45")),
    ]
    assert derive(CODE, stated, None, CALENDAR, RULES).received_at == vn("2026-03-02 07:30")


def test_the_same_state_whatever_order_the_events_come_in() -> None:
    events = [
        _event("a", S.accepted, "2026-03-02 08:00", due_at=vn("2026-03-05 17:00")),
        _event("s", S.supplement_requested, "2026-03-03 09:00"),
        _event(
            "p", S.processing, "2026-03-04 09:00", supplement_supplied_at=vn("2026-03-04 09:00")
        ),
        _event("f", S.finished, "2026-03-06 10:00"),
    ]
    once: datetime | None = None
    for shuffled in (events, list(reversed(events)), events[2:] + events[:2]):
        state = derive(CODE, shuffled, None, CALENDAR, RULES)
        assert state == derive(CODE, order(shuffled), None, CALENDAR, RULES, ordered=True)
        once = once or state.due_at
        assert state.due_at == once
    assert once is not None and once > vn("2026-03-05 17:00")  # the pause moved it
