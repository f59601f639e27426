"""Crafted cursors on every list: each answers 400 invalid-cursor, never a 5xx.

A cursor is opaque to clients but it is only base64url JSON, so anyone can write one. Each
list's cursor has a shape (text of a column's width, a bigint id, an instant with its offset,
a UUID); for every list the test writes cursors that miss that shape in every way we know of
— wrong arity, wrong types, out-of-range numbers, naive or impossible times, NUL characters,
over-long text, garbage bytes — and hypothesis adds arbitrary JSON arrays. A valid `next`
still pages, counted by hand on a dossier's history.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidCursor
from app.core.pagination import (
    MAX_CURSOR_LENGTH,
    Instant,
    Integer,
    Text,
    Uuid,
    decode_cursor,
    encode_cursor,
)
from tests.helpers import ADMIN, event, post_events
from tests.security.conftest import DOSSIER_A, UNIT_A, World

# --- what each list's cursor looks like ------------------------------------------------------

# A kind names one position: what a valid value looks like, and what else to try there.
VALID_SAMPLE: dict[str, Any] = {
    "text7": "2026-03",
    "text16": "H01",
    "text48": "rule",
    "text64": "H01.01",
    "id": 1,
    "revision": 1,
    "instant": "2026-03-02T01:00:00+00:00",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
TEXT_WIDTH = {"text7": 7, "text16": 16, "text48": 48, "text64": 64}


@pytest.fixture
def lists(world: World) -> dict[str, tuple[str, dict[str, str], dict[str, str], tuple[str, ...]]]:
    """name → (path, extra query, headers of a key allowed to read it, cursor shape)."""
    desk, admin = world.keys["desk_a"], world.keys["admin"]
    return {
        "dossier events": (f"/v1/dossiers/{DOSSIER_A}/events", {}, desk, ("instant", "id")),
        "dossiers": ("/v1/dossiers", {}, desk, ("text64",)),
        "overdue": (f"/v1/units/{UNIT_A}/overdue", {}, desk, ("instant", "text64")),
        "due soon": (f"/v1/units/{UNIT_A}/due-soon", {}, desk, ("instant", "text64")),
        "units": ("/v1/units", {}, desk, ("text64",)),
        "procedures": ("/v1/procedures", {}, desk, ("text64",)),
        "api keys": ("/v1/api-keys", {}, admin, ("text16",)),
        "indicator values": (
            f"/v1/units/{UNIT_A}/indicator-values", {}, desk, ("text7", "text64", "revision"),
        ),
        "quarantine": ("/v1/portal/quarantine", {}, admin, ("id",)),
        "unmapped": ("/v1/portal/unmapped", {}, admin, ("text64",)),
        "webhooks": ("/v1/webhooks", {}, desk, ("instant", "uuid")),
        "deliveries": (f"/v1/webhooks/{world.webhook_a}/deliveries", {}, desk, ("id",)),
        "integrity": (
            f"/v1/units/{UNIT_A}/integrity", {"period": "2026-03"}, desk,
            ("text16", "text64", "text48"),
        ),
        "audit": ("/v1/audit", {}, admin, ("id",)),
    }  # fmt: skip


LIST_NAMES = [
    "dossier events", "dossiers", "overdue", "due soon", "units", "procedures", "api keys",
    "indicator values", "quarantine", "unmapped", "webhooks", "deliveries", "integrity",
    "audit",
]  # fmt: skip


def raw_cursor(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def json_cursor(values: Any) -> str:
    # json, not orjson: it writes integers beyond 64 bits, as a crafted cursor would.
    return raw_cursor(json.dumps(values).encode())


# Wrong in any position, whatever the position holds.
ANYWHERE: list[Any] = [None, True, False, [], [1], ["H01"], {"a": 1}, 1.0, -0.0, 1e300, 2**64]
WRONG_FOR: dict[str, list[Any]] = {
    "text": [1, 0, "\x00", "H01\x00", "x" * 65],
    "id": ["1", "", 0, -1, 2**63, -(2**63) - 1, 1.5, 2**200],
    "revision": ["1", 0, -1, 2**31, 2**63, 1.5],
    "instant": [
        "2026-02-30T00:00:00+00:00",  # no such day
        "2026-03-02T25:00:00+00:00",
        "2026-03-02T01:00:00",  # naive
        "2026-03-02",
        "2026-03-02 01:00:00+00:00",
        "2026-03-02T01:00:00+25:00",
        "2026-W10-1T01:00:00+00:00",
        "20260302T010000Z",
        "2026-03-02T01:00:00.1234567+00:00",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
        "now",
        "",
        1772413200,
        "2026-03-02T01:00:00+00:00" + "0" * 300,
    ],
    "uuid": [
        "not-a-uuid", 0, "{00000000-0000-0000-0000-000000000000}",
        "00000000000000000000000000000000", "urn:uuid:00000000-0000-0000-0000-000000000000",
        "00000000-0000-0000-0000-00000000000g",
    ],
}  # fmt: skip


def wrong_values(kind: str) -> list[Any]:
    if kind in TEXT_WIDTH:
        width = TEXT_WIDTH[kind]
        return [*ANYWHERE, *WRONG_FOR["text"], "x" * (width + 1)]
    return [*ANYWHERE, *WRONG_FOR[kind]]


def garbage_cursors() -> list[str]:
    """Cursors wrong for any list: not base64url, not JSON, not an array, too long."""
    rng = random.Random(13)
    random_bytes = [raw_cursor(rng.randbytes(rng.randint(1, 96))) for _ in range(16)]
    return [
        "%%%not-base64", "a+b/c=", "W1swXV0=", "A", "Wy", "....", " ", "W1sxXV0\x00",
        raw_cursor(b"not json"), raw_cursor(b"\xff\xfe[1]"), raw_cursor(b"[1,"),
        raw_cursor(b'{"a": 1}'), raw_cursor(b"1"), raw_cursor(b'"H01"'), raw_cursor(b"null"),
        raw_cursor(b"[NaN]"), raw_cursor(b"[Infinity]"), raw_cursor(b"[1e400]"),
        raw_cursor(b'["\\ud800"]'), json_cursor([]),
        "A" * (MAX_CURSOR_LENGTH + 1),
        json_cursor(["x" * 400]),  # well-formed, but longer than a cursor may be
        *random_bytes,
    ]  # fmt: skip


def crafted_cursors(shape: tuple[str, ...]) -> list[str]:
    valid = [VALID_SAMPLE[kind] for kind in shape]
    cursors = garbage_cursors()
    # Wrong arity, and the whole key nested one level down.
    cursors += [json_cursor(valid[:-1]), json_cursor([*valid, 1]), json_cursor([*valid, None])]
    cursors += [json_cursor([valid]), json_cursor({"key": valid})]
    # One position wrong at a time, the others valid: each position is checked on its own.
    for position, kind in enumerate(shape):
        for wrong in wrong_values(kind):
            cursors.append(json_cursor([*valid[:position], wrong, *valid[position + 1 :]]))
    return cursors


def assert_invalid_cursor(response: httpx.Response, cursor: str) -> None:
    assert response.status_code == 400, (cursor, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", cursor
    body = response.json()
    assert body["type"] == "/problems/invalid-cursor", body
    assert body["status"] == 400
    assert [e["parameter"] for e in body["errors"]] == ["cursor"], body
    assert "`next`" in body["detail"], body


# --- the lists ----------------------------------------------------------------------------------


def test_every_list_with_a_cursor_is_fuzzed(app: FastAPI) -> None:
    # A new list endpoint must join LIST_NAMES (and the `lists` fixture) to be covered.
    paged = sorted(
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "cursor" for p in operation.get("parameters", []))
    )
    assert len(paged) == len(LIST_NAMES) == 14, paged


@pytest.mark.parametrize("name", LIST_NAMES)
async def test_crafted_cursors_answer_400_invalid_cursor(
    client: httpx.AsyncClient, lists: dict[str, Any], name: str
) -> None:
    path, query, headers, shape = lists[name]
    # The control: path, key and shape are right, so each 400 below is the cursor's doing.
    control = json_cursor([VALID_SAMPLE[kind] for kind in shape])
    response = await client.get(path, params={**query, "cursor": control}, headers=headers)
    assert response.status_code == 200, response.text
    cursors = crafted_cursors(shape)
    assert len(cursors) > 40
    for cursor in cursors:
        response = await client.get(path, params={**query, "cursor": cursor}, headers=headers)
        assert_invalid_cursor(response, cursor)


async def test_a_cursor_of_another_list_is_refused(
    client: httpx.AsyncClient, lists: dict[str, Any]
) -> None:
    # The events cursor (instant, id) is neither a unit code nor an (instant, code) pair.
    events_cursor = json_cursor(["2026-03-02T01:00:00+00:00", 7])
    for name in ("units", "overdue", "indicator values", "webhooks"):
        path, query, headers, _ = lists[name]
        response = await client.get(
            path, params={**query, "cursor": events_cursor}, headers=headers
        )
        assert_invalid_cursor(response, events_cursor)


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.sampled_from(list(VALID_SAMPLE.values()))
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=st.lists(JSON_VALUES, max_size=4))
async def test_arbitrary_json_arrays_never_answer_5xx(
    client: httpx.AsyncClient, lists: dict[str, Any], key: list[Any]
) -> None:
    cursor = json_cursor(key)
    for name in LIST_NAMES:
        path, query, headers, _ = lists[name]
        response = await client.get(path, params={**query, "cursor": cursor}, headers=headers)
        # Hypothesis may hit a valid key now and then (["H01"] for units): that one pages.
        if response.status_code != 200:
            assert_invalid_cursor(response, cursor)


# --- a valid cursor still pages ---------------------------------------------------------------


def cursor_values(cursor: str) -> list[Any]:
    values: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return values


async def test_the_event_history_pages_by_its_typed_cursor(
    client: httpx.AsyncClient, world: World
) -> None:
    # DOSSIER_A already has seed-1 (received Mon 2 Mar 08:00); two more events follow it.
    await post_events(client, [
        event("seed-2", DOSSIER_A, 4, "2026-03-02 09:00"),
        event("seed-3", DOSSIER_A, 9, "2026-03-03 10:30"),
    ])  # fmt: skip
    path, desk = f"/v1/dossiers/{DOSSIER_A}/events", world.keys["desk_a"]

    first = await client.get(path, params={"limit": 2}, headers=desk)
    assert first.status_code == 200, first.text
    page1 = first.json()
    assert [e["event_id"] for e in page1["items"]] == ["seed-1", "seed-2"]
    # The cursor is the last item's key: its time in UTC with the offset written out
    # (09:00 in Vietnam is 02:00 UTC), then its row id.
    at, row_id = cursor_values(page1["next"])
    assert at == "2026-03-02T02:00:00+00:00"
    assert type(row_id) is int and row_id >= 1

    second = await client.get(path, params={"limit": 2, "cursor": page1["next"]}, headers=desk)
    assert second.status_code == 200, second.text
    page2 = second.json()
    assert [e["event_id"] for e in page2["items"]] == ["seed-3"]
    assert page2["next"] is None

    # The same instant written at +07:00 is the same key: the same page.
    local = json_cursor(["2026-03-02T09:00:00+07:00", row_id])
    same = await client.get(path, params={"limit": 2, "cursor": local}, headers=desk)
    assert [e["event_id"] for e in same.json()["items"]] == ["seed-3"]
    # seed-1's time with seed-2's (larger) id sorts between seed-1 and seed-2: the page
    # starts at seed-2. The key is compared as a whole, not as a time alone.
    earlier = json_cursor(["2026-03-02T01:00:00+00:00", row_id])
    again = await client.get(path, params={"limit": 2, "cursor": earlier}, headers=desk)
    assert [e["event_id"] for e in again.json()["items"]] == ["seed-2", "seed-3"]


async def test_an_empty_cursor_is_the_first_page(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/units", params={"cursor": "", "limit": 2}, headers=ADMIN)
    assert response.status_code == 200
    assert [u["code"] for u in response.json()["items"]] == ["H01", "H01.01"]


# --- the decoder on its own ---------------------------------------------------------------------


def test_decode_returns_typed_values() -> None:
    webhook = uuid.uuid4()
    cursor = encode_cursor(
        [datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=7))), 42, "H01.01", webhook]
    )
    at, number, code, ident = decode_cursor(
        cursor, (Instant(), Integer(minimum=1), Text(max_length=64), Uuid())
    )
    assert at == datetime(2026, 3, 2, 2, 0, tzinfo=UTC) and at.utcoffset() == timedelta(0)
    assert (number, code, ident) == (42, "H01.01", webhook)
    # What the encoder writes: UTC with the offset spelled out, the UUID canonical.
    assert cursor_values(cursor) == ["2026-03-02T02:00:00+00:00", 42, "H01.01", str(webhook)]


def test_nullable_positions_admit_null_and_others_do_not() -> None:
    cursor = json_cursor([None, "H01"])
    assert decode_cursor(cursor, (Instant(nullable=True), Text())) == (None, "H01")
    with pytest.raises(InvalidCursor) as refused:
        decode_cursor(cursor, (Instant(), Text()))
    assert refused.value.status == 400
    assert refused.value.detail is not None and "Value 1 of 2" in refused.value.detail


def test_the_encoder_refuses_what_the_decoder_would() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_cursor([datetime(2026, 3, 2, 9, 0)])
    with pytest.raises(TypeError):
        encode_cursor([True])


@pytest.mark.parametrize(
    ("field", "edge", "accepted"),
    [
        (Integer(), 2**63 - 1, True),
        (Integer(), 2**63, False),
        (Integer(), -(2**63), True),
        (Integer(), -(2**63) - 1, False),
        (Integer(minimum=1), 0, False),
        (Integer(minimum=1, maximum=2**31 - 1), 2**31 - 1, True),
        (Integer(minimum=1, maximum=2**31 - 1), 2**31, False),
        (Text(max_length=3), "abc", True),
        (Text(max_length=3), "abcd", False),
        (Instant(), "2026-03-02T02:00:00Z", True),
        (Instant(), "2026-03-02T02:00:00.5-05:30", True),
        (Instant(), "2026-03-02T02:00:00", False),
        (Uuid(), "0000000A-0000-0000-0000-000000000000", True),
    ],
)
def test_edges_of_each_field(field: Any, edge: Any, accepted: bool) -> None:
    cursor = json_cursor([edge])
    if accepted:
        assert decode_cursor(cursor, (field,))[0] is not None
    else:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, (field,))
