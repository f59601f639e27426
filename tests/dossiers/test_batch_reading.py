"""A batch is read by msgspec (app/dossiers/intake.py) with the very results pydantic gives an
item (DossierEventIn, one by one): the same values stored, the same items refused with the same
errors, the same bodies refused whole. Held together on generated items near every rule's edge,
and through the API where only the API can tell.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import httpx
import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.core.errors import item_errors
from app.core.settings import Settings
from app.dossiers import intake, service
from app.dossiers.schemas import BatchResult, DossierEventIn, ItemResult
from tests.helpers import ADMIN, event, province_with_communes, put_procedure

NOW = datetime.now(UTC)
THIS_YEAR = NOW.year


def _reference(items: list[Any], store_notes: bool) -> service.Accepted:
    """What the API did before msgspec, on what orjson read: each item validated by pydantic
    on its own (a clean batch in one call), refused with its errors."""
    parsed: list[DossierEventIn | ItemResult] = []
    for index, raw in enumerate(items):
        try:
            parsed.append(DossierEventIn.model_validate(raw))
        except ValidationError as exc:
            errors = item_errors(exc.errors(), "/events", index)
            parsed.append(service.rejected_item(index, raw, errors))
    settings = cast(Settings, SimpleNamespace(store_notes=store_notes))
    return service.accepted(settings, parsed)


def _read(items: list[Any], store_notes: bool) -> service.Accepted:
    """What the API does: msgspec reads the whole body, else the items orjson parsed."""
    body = msgspec.json.encode({"events": items})
    return intake.decode(body, store_notes) or intake.read(_as_sent(items), store_notes)


def _as_sent(items: list[Any]) -> list[Any]:
    """The items as the API's JSON parser reads them off the wire."""
    events: list[Any] = orjson.loads(msgspec.json.encode({"events": items}))["events"]
    return events


def _same(read: service.Accepted, reference: service.Accepted) -> None:
    assert read.rejected == reference.rejected
    assert read.indexes == reference.indexes
    # Rows compare field by field; instants as instants (time zone objects differ).
    assert read.rows == reference.rows
    assert [e.facts for e in read.events] == [e.facts for e in reference.events]
    assert [(e.event_id, e.dossier_code) for e in read.events] == [
        (e.event_id, e.dossier_code) for e in reference.events
    ]


def _valid() -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "dossier_code": "H01.01-260302-0001",
        "unit_code": "H01.01",
        "procedure_code": "P3",
        "status": 2,
        "occurred_at": "2026-03-02T08:00:00+07:00",
        "channel": 1,
    }


CODES = st.one_of(
    st.sampled_from(
        ["H01.01", "P3", "1.001022.000.00.00.H01", "a:b/c-d", " H01", "H01 ", "H01\n", "",
         "H" * 64, "H" * 65, "Hà", "H01\x00", "-H01", "٢٠", "H01\t"]
    ),
    st.text(max_size=8),
)  # fmt: skip
TIMES = st.one_of(
    st.sampled_from(
        ["2026-03-02T08:00:00+07:00", "2026-03-02T08:00+07:00", "2026-03-02 08:00:00Z",
         "2026-03-02t08:00:00z", "2026-03-02T08:00:00.1234567+07:00",
         "2026-03-02T08:00:00.9999995Z", "2026-03-02T08:00:00.5-00:00", "2026-03-02T08:00:00",
         "2026-03-02T08:00:00+0700", "2026-03-02T08:00:00,5+07:00", "1790000000",
         "2026-02-29T08:00:00Z", "2024-02-29T23:59:59.999999+23:59", "1999-12-31T23:00:00-12:00",
         "2000-01-01T00:30:00+14:00", "2000-01-01T00:00:00+00:00", "1999-12-31T23:59:59Z",
         f"{THIS_YEAR + 2}-12-31T00:00:00Z", f"{THIS_YEAR + 1}-06-30T00:00:00+07:00",
         "2099-12-31T10:00:00+07:00", " 2026-03-02T08:00:00Z", "2026-03-02T08:00:00Z ",
         "2026-03-02T24:00:00Z", "2026-03-02", "yesterday", ""]
    ),
    st.datetimes(
        min_value=datetime(1998, 1, 1), max_value=datetime(THIS_YEAR + 3, 1, 1),
        timezones=st.sampled_from([UTC]),
    ).map(lambda t: t.isoformat()),
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-3, 12), st.sampled_from([2.0, 2.5, True, False, "2", None, 10**20, 1e20])
)
FACT_COUNTS = st.one_of(
    st.integers(-1, 100_001), st.sampled_from([7.0, True, "7", 10**15 + 1, None])
)
NOTES = st.one_of(
    st.sampled_from(
        ["Gọi 0912 345 678, CCCD 079190012345", " lề ", "\u3000đầu", "cuối\u00a0", "\x1fx",
         "x\x00y", "", "   ", "a" * 2000, "a" * 2001, " " + "a" * 2000, "lan@example.vn"]
    ),
    st.text(max_size=30),
)  # fmt: skip
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(CODES, st.sampled_from(["x" * 128, "x" * 129, "ê", "a b"])),
    "dossier_code": st.one_of(CODES, st.sampled_from(["H01/01", "X-1"])),
    "unit_code": CODES,
    "procedure_code": CODES,
    "status": NUMBERS,
    "channel": NUMBERS,
    "applicant_kind": NUMBERS,
    "occurred_at": st.one_of(TIMES, st.sampled_from([None, 1790000000, True])),
    "due_at": st.one_of(TIMES, st.none()),
    "received_at": TIMES,
    "fee_paid_at": TIMES,
    "apology_new_due_at": TIMES,
    "note": st.one_of(NOTES, st.none(), st.just(12)),
    "paid_online": st.sampled_from([True, False, None, 1, "true"]),
    "has_digitized_parts": st.sampled_from([True, False, None, 0]),
    "vneid_verified": st.sampled_from([True, None, 1]),
    "papers_total": FACT_COUNTS,
    "fees_total": st.one_of(st.integers(-1, 10**15 + 1), st.sampled_from([5.0, None, "5"])),
    "fees_all_zero": st.sampled_from([True, False, None, "yes"]),
    "databases": st.one_of(
        st.none(), st.lists(CODES, max_size=3), st.just(["A"] * 51), st.just("CSDLQGDC")
    ),
    "payment_code": st.one_of(st.none(), CODES, st.sampled_from(["1", "2", "x" * 65])),
    "owner_phone": st.just("0912345678"),  # unknown: dropped
}


@st.composite
def items(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from(["not an object", 12, None, [], [_valid()]]))
    item = _valid()
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True)):
        if draw(st.integers(0, 9)) == 0:
            item.pop(name, None)  # missing
        else:
            item[name] = draw(FIELDS[name])
    return item


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items(), min_size=1, max_size=6), st.booleans())
@example([_valid(), {**_valid(), "event_id": "e-2", "note": " scrubbed 0912 345 678 "}], True)
@example([{**_valid(), "occurred_at": "2026-03-02T08:00:00.1234567+07:00"}], False)
@example([{**_valid(), "status": 2.0}, _valid()], False)
@example([{**_valid(), "unit_code": "H01.01\n"}], False)
def test_msgspec_reads_every_item_as_pydantic_does(batch: list[Any], store_notes: bool) -> None:
    _same(_read(batch, store_notes), _reference(_as_sent(batch), store_notes))


@given(st.lists(st.builds(lambda: _valid()), min_size=1, max_size=3), TIMES, st.booleans())
def test_every_time_is_the_instant_pydantic_reads(
    batch: list[Any], time: str, store_notes: bool
) -> None:
    batch = [{**item, "due_at": time, "event_id": f"e-{n}"} for n, item in enumerate(batch)]
    _same(_read(batch, store_notes), _reference(_as_sent(batch), store_notes))


def test_a_clean_batch_is_read_by_msgspec_and_a_bad_item_by_pydantic() -> None:
    good = {**_valid(), "papers_total": 3, "databases": ["CSDLQGDC", "CSDLQGDC"]}
    bad = {**_valid(), "event_id": "e-2", "due_at": "2099-12-31T10:00:00+07:00"}
    batch = intake.decode(orjson.dumps({"events": [good, bad]}), store_notes=False)
    assert batch is not None  # read by msgspec: the out-of-range time is a rule checked after
    assert batch.indexes == [0]
    assert batch.rejected == {
        1: (1, "e-2", "rejected",
            [{"pointer": "#/events/1/due_at",
              "detail": "Value error, date out of range (from 2000-01-01 to two years from now)"}],
            None)
    }  # fmt: skip
    assert batch.events[0].facts == {"papers_total": 3, "databases": ["CSDLQGDC", "CSDLQGDC"]}
    # An item of the wrong JSON type: the whole body is read item by item, as before.
    assert intake.decode(orjson.dumps({"events": [{**good, "status": "2"}]}), False) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [{"x": "\xff"}]}',  # not UTF-8, in a field no event has
        b'{"events": [{"x": 1e999}]}',  # beyond a double
        b'{"events": [{"x": -1.5E+400}]}',
        b'{"events": [{"x": ' + b"9" * 400 + b"}]}",
        b'{"events": [{"x": ' + b"[" * 2000 + b"]" * 2000 + b"}]}",  # deeper than msgspec goes
    ],
)
def test_bodies_the_json_parser_refuses_are_not_read_by_msgspec(body: bytes) -> None:
    assert intake.decode(body, store_notes=False) is None


def test_the_answer_is_what_pydantic_would_write() -> None:
    at = datetime(2026, 3, 2, 1, 0, 0, 123456, tzinfo=UTC)
    outcomes: list[service.Outcome] = [
        (0, "e-1", "stored", None, None),
        (1, None, "rejected", [{"pointer": "#/events/1", "detail": "Thiếu"}], None),
        (2, "e-3", "conflict", [{"pointer": "#/events/2/event_id", "detail": "x"}], at),
        (3, "e-4", "duplicate", None, None),
        (4, "e-5", "conflict", [{"pointer": "#/events/4/event_id", "detail": "y"}],
         at.replace(microsecond=0)),
    ]  # fmt: skip
    outcome = service.Ingested(outcomes=outcomes, touched=[])
    expected = BatchResult(
        stored=1, updated=0, duplicate=1, conflict=2, rejected=1, derived=True,
        items=[ItemResult(index=i, event_id=e, result=r, errors=x, stored_at=s)  # type: ignore[arg-type]
               for i, e, r, x, s in outcomes],
    ).model_dump_json()  # fmt: skip
    assert intake.answer(outcome, derived=True) == expected.encode()


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")


@pytest.mark.parametrize("body", [b'{"events": [{"x": "\xff"}]}', b'{"events": [{"x": 1e999}]}'])
async def test_a_body_that_is_not_json_is_refused_whole_as_before(
    client: httpx.AsyncClient, setup: None, body: bytes
) -> None:
    response = await client.post(
        "/v1/dossier-events/batch", content=body,
        headers={**ADMIN, "content-type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["detail"] == "The body is not valid JSON."


async def test_a_repeated_event_in_a_batch_is_a_duplicate_or_a_conflict(
    client: httpx.AsyncClient, setup: None
) -> None:
    first = event("e-1", "H01.01-260302-0001", 2, "2026-03-02 08:00")
    other = {**first, "status": 4}
    stored = event("e-2", "H01.01-260302-0001", 4, "2026-03-02 09:00")
    answer = await client.post("/v1/dossier-events/batch", json={"events": [stored]}, headers=ADMIN)
    assert answer.json()["stored"] == 1
    batch = [first, first, other, stored, {**stored, "status": 9}, "x", first]
    answer = await client.post("/v1/dossier-events/batch", json={"events": batch}, headers=ADMIN)
    assert answer.status_code == 200
    body = answer.json()
    assert [i["result"] for i in body["items"]] == [
        "stored", "duplicate", "conflict", "duplicate", "conflict", "rejected", "duplicate"
    ]  # fmt: skip
    assert (body["stored"], body["duplicate"], body["conflict"], body["rejected"]) == (1, 3, 2, 1)
    earlier, stored_before = body["items"][2], body["items"][4]
    assert earlier["errors"] == [
        {"pointer": "#/events/2/event_id",
         "detail": "this event_id comes earlier in this batch with other content"}
    ]  # fmt: skip
    assert earlier["stored_at"] is None
    assert stored_before["errors"] == [
        {"pointer": "#/events/4/event_id",
         "detail": "this event_id is already stored for this dossier with other content"}
    ]  # fmt: skip
    assert datetime.fromisoformat(stored_before["stored_at"]) <= datetime.now(UTC)
    # Sent again whole: nothing new, the same answers for the same items.
    again = await client.post("/v1/dossier-events/batch", json={"events": batch}, headers=ADMIN)
    assert [i["result"] for i in again.json()["items"]] == [
        "duplicate", "duplicate", "conflict", "duplicate", "conflict", "rejected", "duplicate"
    ]  # fmt: skip
