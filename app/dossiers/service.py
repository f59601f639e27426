"""Dossier rules: ingest events (idempotent, order-independent), derive state, answer queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from types import SimpleNamespace
from typing import Any, Literal, Protocol

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.service import current_calendar
from app.calendar.workdays import WorkingCalendar
from app.core import events
from app.core.direct import DirectPool
from app.core.errors import Forbidden, NotFound
from app.core.principal import Principal
from app.core.settings import Settings
from app.core.uow import Contention
from app.dossiers import repository
from app.dossiers.facts_repository import stated_json, upsert_stated
from app.dossiers.schemas import (
    Anomaly,
    Apology,
    DossierEventIn,
    DossierOut,
    ItemResult,
    OverdueCount,
    OverdueItem,
    Pause,
)
from app.dossiers.timeline import DossierRules, DossierState, derive, order, standing
from app.indicators.periods import periods_touched
from app.units.service import ensure_in_scope, require_unit

OUTSIDE_SCOPE = "outside this key's unit"


def rules_from(settings: Settings) -> DossierRules:
    return DossierRules(
        max_supplement_requests=settings.max_supplement_requests,
        future_tolerance=timedelta(minutes=settings.future_tolerance_minutes),
    )


# --- ingestion ---------------------------------------------------------------------------


Result = Literal["stored", "updated", "duplicate", "conflict", "rejected"]
# One item's result: (index, event_id, result, errors, stored_at), as ``ItemResult`` has them.
Outcome = tuple[int, str | None, Result, list[dict[str, Any]] | None, datetime | None]
# Batches from this size travel to PostgreSQL by COPY; a single event stays one statement.
STAGE_FROM = 2


@dataclass
class Ingested:
    outcomes: list[Outcome]  # one per item, in order
    touched: list[str]

    @cached_property
    def results(self) -> list[ItemResult]:
        # Built from checked values: no validation needed (10,000 of them in a full batch).
        return [
            ItemResult.model_construct(
                index=index, event_id=event_id, result=result, errors=errors, stored_at=stored_at
            )
            for index, event_id, result, errors, stored_at in self.outcomes
        ]

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome[2] == result)


class StatedEvent(Protocol):
    """What ingestion reads of an event beside its row: DossierEventIn, or a batch item."""

    @property
    def event_id(self) -> str: ...
    @property
    def dossier_code(self) -> str: ...
    @property
    def facts(self) -> dict[str, Any]: ...


@dataclass
class Accepted:
    """A batch's valid items on their way to the store, with the others' results."""

    indexes: list[int]  # each event's position in the batch
    # The events as posted to the API, for the facts they state (``StatedEvent.facts``): one
    # per row. Empty for portal records, whose facts travel apart (``app.portal.service``).
    events: list[StatedEvent]
    rows: list[repository.EventRow]  # ``repository.row_of`` each event, notes settled
    rejected: dict[int, Outcome]


def rejected_item(index: int, raw: Any, errors: list[dict[str, Any]]) -> ItemResult:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return ItemResult(
        index=index,
        event_id=event_id if isinstance(event_id, str) else None,
        result="rejected",
        errors=errors,
    )


def accepted(
    settings: Settings,
    items: Sequence[DossierEventIn | ItemResult],
    time_inferred: Sequence[bool] | None = None,
) -> Accepted:
    """Parsed items (``parse_items``, or events built by the portal) made ready to store."""
    batch = Accepted([], [], [], {})
    for index, item in enumerate(items):
        if isinstance(item, ItemResult):
            batch.rejected[index] = (index, item.event_id, item.result, item.errors, None)
            continue
        event = item if settings.store_notes else _without_note(item)
        inferred = bool(time_inferred[index]) if time_inferred else False
        batch.rows.append(repository.row_of(len(batch.rows), event, inferred))
        batch.indexes.append(index)
        batch.events.append(event)
    return batch


async def ingest(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    items: Sequence[DossierEventIn | ItemResult],
    *,
    source: str = "api",
    pointer_prefix: str | None = "/events",
    derive_now: bool = False,
    time_inferred: Sequence[bool] | None = None,
) -> Ingested:
    """Store new events and queue their dossiers for derivation; the caller commits.

    ``time_inferred`` (parallel to ``items``): events whose time chiso inferred, kept as first
    inferred when re-sent. See :func:`ingest_accepted`.
    """
    batch = accepted(settings, items, time_inferred)
    return await ingest_accepted(
        session, settings, principal, batch, source=source, pointer_prefix=pointer_prefix,
        derive_now=derive_now,
    )  # fmt: skip


async def ingest_accepted(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    batch: Accepted,
    *,
    source: str = "api",
    pointer_prefix: str | None = "/events",
    derive_now: bool = False,
) -> Ingested:
    """Store a batch's valid events and queue their dossiers for derivation (the caller
    commits); one result per item.

    One statement checks, claims new dossiers, inserts and queues the whole batch (see
    :func:`repository.store_events` for the ownership and idempotency rules); a batch travels
    to it by COPY. The worker derives queued dossiers within about a second
    (:func:`derive_queued`); ``derive_now`` derives the touched dossiers in this transaction
    instead.
    """
    results: list[Outcome | None] = [None] * (len(batch.indexes) + len(batch.rejected))
    for index, rejected in batch.rejected.items():
        results[index] = rejected
    checks = await _store(session, settings, principal, batch, source)
    touched: set[str] = set()
    for index, row, check in zip(batch.indexes, batch.rows, checks, strict=True):
        event_id, dossier_code = row[1], row[2]  # rows: ord, event_id, dossier_code, ...
        results[index] = _outcome(pointer_prefix, index, event_id, dossier_code, check)
        if check.written:
            touched.add(dossier_code)
    outcomes = [r for r in results if r is not None]
    assert len(outcomes) == len(results), "one result per item"

    if source == "api":
        # Index facts stated by accepted events, in arrival order (a later statement wins,
        # field by field); portal records keep theirs through the portal's own path.
        stated: dict[str, dict[str, Any]] = {}
        for index, event in zip(batch.indexes, batch.events, strict=True):
            if outcomes[index][2] in _ACCEPTED and (facts := event.facts):
                stated.setdefault(event.dossier_code, {}).update(facts)
        if stated:
            await upsert_stated(session, stated)
            touched.update(stated)  # re-derived: their periods rescore

    codes = sorted(touched)
    if derive_now:
        await derive_inline(session, settings, codes)
    return Ingested(outcomes=outcomes, touched=codes)


async def derive_inline(session: AsyncSession, settings: Settings, codes: Sequence[str]) -> None:
    """Derive ``codes`` in this transaction (``Prefer: return=representation``): their queue
    rows are taken (waiting for a worker's claim on one to end), then their states derived."""
    if codes:
        await repository.take_queued(session, codes)
        await derive_locked(session, settings, codes)


_WRITTEN: dict[bool, Result] = {True: "stored", False: "updated"}
_ACCEPTED = frozenset({"stored", "updated", "duplicate"})


def _outcome(
    pointer_prefix: str | None,
    index: int,
    event_id: str,
    dossier_code: str,
    check: repository.Checked,
) -> Outcome:
    """One event's result, as the store statement judged it."""
    if check.written:  # written: it passed every check
        return (index, event_id, _WRITTEN[check.inserted], None, None)
    if errors := _refusals(pointer_prefix, index, dossier_code, check):
        return (index, event_id, "rejected", errors, None)
    if check.same:
        return (index, event_id, "duplicate", None, None)
    stored_at = check.stored_at
    conflict = [_conflict(pointer_prefix, index, stored_at)]
    return (index, event_id, "conflict", conflict, stored_at)


async def ingest_one(
    direct: DirectPool, settings: Settings, principal: Principal, event: DossierEventIn
) -> Outcome:
    """One event posted through the API, stored and its dossier queued as :func:`ingest`
    would (with the facts it states), in one statement in autocommit: it is committed when
    this returns. Its result's pointers name the body's fields (``#/unit_code``)."""
    rules = _rules(settings, principal, "api")
    row = repository.row_of(0, event if settings.store_notes else _without_note(event))
    stated = event.facts
    facts = stated_json({event.dossier_code: stated}) if stated else None

    async def store(db: Any) -> repository.Checked:
        # A statement that could not see what a concurrent one committed runs again.
        for _ in range(3):
            check = await repository.store_one(db, row, rules, facts)
            if check.written or not _unsettled(check):
                return check
        raise Contention(event.dossier_code)

    check = await direct.run(store, retries=settings.retry_conflicts)
    return _outcome(None, 0, event.event_id, event.dossier_code, check)


async def requeue_lagging(session: AsyncSession, margin_seconds: int = 300) -> int:
    """The safety net behind the queue: dossiers whose state lags their history are queued
    again (the caller commits). Returns how many were found."""
    found, _ = await repository.requeue_lagging(session, margin_seconds)
    return found


def _unsettled(check: repository.Checked) -> bool:
    """Another transaction that committed after this statement began created the dossier, or
    stored the same event: the statement could not see it, the next one will."""
    if not (check.unit_known and check.procedure_known and check.in_scope):
        return False  # refused whatever others did
    if check.new_dossier and not check.prefix_ok:
        return False
    return not check.owned or (check.first and not check.written and check.same is None)


async def _store(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    batch: Accepted,
    source: str,
    passes: int = 3,
) -> list[repository.Checked]:
    """Store the events; those a concurrent writer got to first are stored again by a new
    statement (which sees that writer's commit), so a race costs a few items, not a retry
    of the whole batch."""
    rules = _rules(settings, principal, source)
    rows = batch.rows
    staged = len(rows) >= STAGE_FROM
    # No event posted twice in the batch (the usual case): the statement then has no earlier
    # postings to look for (rows: ord, event_id, dossier_code, ...).
    once = staged and len({(row[2], row[1]) for row in rows}) == len(rows)
    if staged:
        await repository.stage_events(session, rows)
    checks: dict[int, repository.Checked] = {}
    pending: list[int] | None = None  # None: all of them
    for _ in range(passes):
        if staged:
            found = await repository.store_staged(session, pending, rules, once=once)
        else:
            some = rows if pending is None else [rows[o] for o in pending]
            found = await repository.store_events(session, some, rules)
        again = []
        for check in found:
            if not check.written and _unsettled(check):
                again.append(check.ord)
            else:
                checks[check.ord] = check
        if not again:
            return found if pending is None else [checks[o] for o in range(len(rows))]
        pending = again
    raise Contention(rows[pending[0]][2] if pending else "")


def _rules(settings: Settings, principal: Principal, source: str) -> repository.StoreRules:
    return repository.StoreRules(
        source=source,
        scope_root=principal.unit_code,
        key_id=principal.key_id,
        prefix_required=settings.dossier_code_prefix == "required",
        replaceable=source != "api",
    )


def _without_note(event: DossierEventIn) -> DossierEventIn:
    return event if event.note is None else event.model_copy(update={"note": None})


def _refusals(
    prefix: str | None, index: int, dossier_code: str, check: repository.Checked
) -> list[dict[str, Any]]:
    errors = []
    if not check.unit_known:
        errors.append(_error(prefix, index, "unit_code", "unknown unit"))
    elif not check.in_scope:
        errors.append(_error(prefix, index, "unit_code", OUTSIDE_SCOPE))
    if not check.procedure_known:
        errors.append(_error(prefix, index, "procedure_code", "unknown procedure"))
    if errors:
        return errors
    if check.new_dossier and not check.prefix_ok:
        owner = dossier_code.split("-", 1)[0]
        detail = (
            f"the code starts with {owner!r}: the dossier belongs to that unit's subtree"
            if "-" in dossier_code
            else "the code must start with its unit's code: {unit}-{yymmdd}-{sequence}"
        )
        errors.append(_error(prefix, index, "dossier_code", detail))
    elif check.owned and not check.owner_in_scope:
        # The dossier is another unit's, whatever unit this event names: refused the same way.
        errors.append(_error(prefix, index, "dossier_code", OUTSIDE_SCOPE))
    return errors


def _conflict(prefix: str | None, index: int, stored_at: datetime | None) -> dict[str, str]:
    detail = "this event_id is already stored for this dossier with other content"
    if stored_at is None:
        detail = "this event_id comes earlier in this batch with other content"
    return _error(prefix, index, "event_id", detail)


async def derive_queued(session: AsyncSession, settings: Settings, limit: int) -> int:
    """Derive up to ``limit`` queued dossiers (claimed with SKIP LOCKED: several workers may
    run this at once). Returns how many; the caller commits, which also ends the claim."""
    codes = await repository.take_backlog(session, limit)
    if codes:
        await derive_locked(session, settings, codes)
    return len(codes)


async def derive_locked(session: AsyncSession, settings: Settings, codes: Sequence[str]) -> int:
    """Lock the dossier rows of ``codes``, then re-derive them from their histories (their
    queue rows, claimed by the caller, keep others from deriving those without a row yet)."""
    await repository.without_jit(session)
    await repository.lock_existing(session, codes)
    calendar = await current_calendar(session, settings)
    return await rederive(session, calendar, rules_from(settings), codes)


def _error(prefix: str | None, index: int, field: str, detail: str) -> dict[str, str]:
    pointer = f"#{prefix}/{index}/{field}" if prefix is not None else f"#/{field}"
    return {"pointer": pointer, "detail": detail}


async def rederive(
    session: AsyncSession, calendar: WorkingCalendar, rules: DossierRules, codes: Sequence[str]
) -> int:
    """Recompute the state of ``codes`` (already locked) from their whole histories."""
    states = await derive_states(session, calendar, rules, codes)
    await repository.save_states(session, states)
    # The index of every period these dossiers count in must be recomputed (debounced), also
    # for a state that did not change: the dossier's facts may have. A span counts by its
    # months only, so a chunk's spans come down to a few distinct ones.
    month = calendar.local_month
    spans = {
        (month(s.received_at or s.first_event_at),
         month(max(s.end_at or s.last_event_at, s.last_event_at)))
        for s in states
    }  # fmt: skip
    await _score_inputs_changed(session, periods_touched(spans), [s.unit_code for s in states])
    return len(states)


async def _score_inputs_changed(
    session: AsyncSession, periods: Sequence[str], unit_codes: Sequence[str]
) -> None:
    """Scores subscribe: the periods these dossiers count in are refreshed (debounced)."""
    if periods:
        changed = events.ScoreInputsChanged(
            kind="dossiers", periods=tuple(periods), unit_codes=tuple(sorted(set(unit_codes)))
        )
        await events.publish(session, changed)


async def derive_states(
    session: AsyncSession, calendar: WorkingCalendar, rules: DossierRules, codes: Sequence[str]
) -> list[DossierState]:
    """The states of ``codes`` from their whole histories (codes without events: none)."""
    histories, owners = await repository.histories(session, codes)
    limits = await repository.limits(
        session, {e.procedure_code for stored in histories.values() for e in stored}
    )
    states = []
    for code, stored in histories.items():
        history = order(stored)
        limit = limits.get(history[-1].procedure_code)
        states.append(derive(code, history, limit, calendar, rules, owners.get(code), ordered=True))
    return states


@dataclass(frozen=True)
class Recomputed:
    codes: list[str]  # the chunk's dossiers, in code order (the next chunk starts after them)
    derived: int


async def recompute_open_chunk(
    session: AsyncSession, settings: Settings, day: date, after: str | None, chunk: int
) -> Recomputed:
    """After a calendar change: re-derive the next ``chunk`` open dossiers (by code, after
    ``after``) whose deadlines may cross ``day`` (no codes: all done).

    Idempotent (re-deriving gives the same state); the caller commits each chunk on its own,
    so one job never holds locks on the whole table.
    """
    codes = await repository.open_codes_from(session, day, after, chunk)
    if not codes:
        return Recomputed(codes, 0)
    await repository.without_jit(session)
    await repository.lock_existing(session, codes)
    calendar = await current_calendar(session, settings)
    return Recomputed(codes, await rederive(session, calendar, rules_from(settings), codes))


# --- reads -------------------------------------------------------------------------------


async def scope_root(
    session: AsyncSession, principal: Principal, requested: str | None
) -> str | None:
    """The unit subtree a read is limited to: the requested unit, within the key's own."""
    if requested is not None:
        await require_unit(session, requested)
        await ensure_in_scope(session, principal, requested)
        return requested
    return principal.unit_code


def to_out(row: Any, calendar: WorkingCalendar, rules: DossierRules, at: datetime) -> DossierOut:
    pauses = row.pauses if isinstance(row.pauses, list) else json.loads(row.pauses)
    anomalies = row.anomalies if isinstance(row.anomalies, list) else json.loads(row.anomalies)
    where = standing(
        counted=row.counted,
        due_at=row.due_at,
        end_at=row.end_at,
        outcome=row.outcome,
        clock_stopped_at=row.clock_stopped_at,
        supplement_requests=row.supplement_requests,
        at=at,
        calendar=calendar,
        rules=rules,
    )
    return DossierOut(
        code=row.code,
        unit_code=row.unit_code,
        procedure_code=row.procedure_code,
        status=row.status,
        channel=row.channel,
        received_at=row.received_at,
        due_at=row.due_at,
        finished_at=row.end_at,
        counted=row.counted,
        timeliness=where.timeliness,
        overdue_by=where.overdue_by,
        supplement_requests=row.supplement_requests,
        paused_for_hours=(Decimal(row.paused_seconds) / 3600).quantize(Decimal("0.01")),
        pauses=[Pause.model_validate(p) for p in pauses],
        apology=Apology(issued_at=row.apology_issued_at, new_due_at=row.apology_new_due_at)
        if row.apology_issued_at
        else None,
        anomalies=[Anomaly.model_validate(a) for a in anomalies],
        last_event_at=row.last_event_at,
    )


async def get_dossier(
    session: AsyncSession, settings: Settings, principal: Principal, code: str, at: datetime
) -> DossierOut:
    row = await current_state(session, settings, code)
    if row is None:
        raise NotFound(f"No dossier with code {code!r}.")
    await _check_dossier_scope(session, principal, row.unit_code)
    calendar = await current_calendar(session, settings)
    return to_out(row, calendar, rules_from(settings), at)


async def current_state(session: AsyncSession, settings: Settings, code: str) -> Any:
    """The dossier's state as of its last stored event: read-your-writes for one dossier.

    While its events wait in the backlog, the state is derived here from the history (not
    written: the worker does that), so a client reading right after posting sees its event.
    """
    row, queued = await repository.get(session, code)
    if not queued:
        return row
    calendar = await current_calendar(session, settings)
    states = await derive_states(session, calendar, rules_from(settings), [code])
    if not states:
        return row
    values = repository.state_values(states[0])
    # As read back from PostgreSQL: instants in UTC, whatever zone the calendar computed in.
    return SimpleNamespace(
        **{k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in values.items()}
    )


async def _check_dossier_scope(session: AsyncSession, principal: Principal, unit: str) -> None:
    try:
        await ensure_in_scope(session, principal, unit)
    except Forbidden:
        raise Forbidden("This dossier belongs to a unit outside this key's unit.") from None


async def dossier_events(
    session: AsyncSession,
    principal: Principal,
    code: str,
    after: tuple[str, int] | None,
    limit: int,
) -> list[Row[Any]]:
    unit_code = await repository.owner_of(session, code)
    if unit_code is None:
        raise NotFound(f"No dossier with code {code!r}.")
    await _check_dossier_scope(session, principal, unit_code)
    return await repository.events_of(session, code, after, limit)


async def overdue_items(
    session: AsyncSession,
    settings: Settings,
    rows: Sequence[Row[Any]],
    at: datetime,
) -> list[OverdueItem]:
    calendar = await current_calendar(session, settings)
    return [
        OverdueItem(
            code=r.code,
            unit_code=r.unit_code,
            unit_name=r.unit_name,
            procedure_code=r.procedure_code,
            received_at=r.received_at,
            due_at=r.due_at,
            overdue_by=calendar.working_days_between(r.due_at, r.clock_stopped_at or at),
            apology_issued=r.apology_issued_at is not None,
            apology_new_due_at=r.apology_new_due_at,
        )
        for r in rows
    ]


async def overdue_counts(
    session: AsyncSession, settings: Settings, root: str, at: datetime
) -> list[OverdueCount]:
    rows = await repository.overdue_counts(
        session, root=root, now=at, max_supp=settings.max_supplement_requests
    )
    return [
        OverdueCount(unit_code=r.unit_code, overdue=r.overdue, without_apology=r.without_apology)
        for r in rows
    ]


async def sweep(
    session: AsyncSession, settings: Settings, at: datetime
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Flag dossiers that turned overdue, or due within the due-soon window, since last time.

    Idempotent: a second sweep at the same instant flags nothing. The caller commits (with
    the notifications it records in the same transaction).
    """
    until = await due_soon_until(session, settings, at, settings.due_soon_hours)
    overdue = await repository.flag_newly_overdue(session, at)
    due_soon = await repository.flag_newly_due_soon(session, at, until)
    if overdue:
        # Time alone turned dossiers overdue: the running period's on-time rate moved.
        today = (await current_calendar(session, settings)).local_date(at)
        await _score_inputs_changed(
            session, periods_touched([(today, today)]), [r.unit_code for r in overdue]
        )
    return overdue, due_soon


async def notify_flagged(
    session: AsyncSession, overdue: Sequence[Row[Any]], due_soon: Sequence[Row[Any]]
) -> int:
    """Tell the subscribers (webhooks) what the sweep flagged, in the same transaction;
    returns how many notifications they recorded."""
    if not overdue and not due_soon:
        return 0
    answers = await events.publish(
        session, events.DeadlinesFlagged(overdue=tuple(overdue), due_soon=tuple(due_soon))
    )
    return sum(answer for answer in answers if isinstance(answer, int))


async def digest_counts(
    session: AsyncSession, settings: Settings, roots: Sequence[str], at: datetime
) -> list[Row[Any]]:
    """Per unit of ``roots``, over its subtree at ``at``: open, overdue, overdue without an
    apology letter, and due within the due-soon window (the daily digest's figures)."""
    until = await due_soon_until(session, settings, at, settings.due_soon_hours)
    return await repository.digest_counts(
        session, roots, at, until, settings.max_supplement_requests
    )


async def due_soon_until(
    session: AsyncSession, settings: Settings, at: datetime, hours: int
) -> datetime:
    calendar = await current_calendar(session, settings)
    return calendar.add_working_time(at, timedelta(hours=hours))
