"""A single event's statement, and a batch's without repeated events, decide as the general
batch statement does.

A single ``POST`` is stored by a statement of its own (``store_one``: one row, written without
what sorts, groups or compares a batch's postings), a batch by the staged statement. Both
carry every trust rule: the unit and the procedure exist, the key's subtree, who owns a
dossier, whose code a prefix names, duplicates and conflicts. Here the same sequences of
events, from keys of rival units, naming units, codes and procedures of every kind, are
posted one by one each way, on two sets of dossiers that differ only in their serial numbers:
each event must get the same answer both ways (the first sequence's answers are also worked
out by hand).
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.dossiers import repository
from app.dossiers.schemas import DossierEventIn
from app.dossiers.service import OUTSIDE_SCOPE
from tests.helpers import ADMIN, create_key, event, province_with_communes, put_procedure

UNITS = ["H01.01", "H01.02", "H05.01", "H01", "H09"]  # H09 does not exist
PREFIXES = ["H01.01", "H01.02", "H05.01", "H01", "X99"]  # X99 names no unit


@pytest.fixture
async def keys(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    scopes = ["dossiers:write"]
    _, own = await create_key(client, scopes, "H01.01", name="own")
    _, rival = await create_key(client, scopes, "H05.01", name="rival")
    _, province = await create_key(client, scopes, "H01", name="province")
    return {"own": own, "rival": rival, "province": province, "admin": ADMIN}


async def single(client: httpx.AsyncClient, body: dict[str, Any], key: dict[str, str]) -> Any:
    response = await client.post("/v1/dossier-events", json=body, headers=key)
    if response.status_code in (200, 202):
        return response.json()["result"]
    problem = response.json()
    details = sorted(e["detail"] for e in problem.get("errors") or [])
    kind = {409: "conflict", 403: "rejected", 422: "rejected"}[response.status_code]
    return kind if kind == "conflict" else (kind, details)


async def batched(client: httpx.AsyncClient, body: dict[str, Any], key: dict[str, str]) -> Any:
    response = await client.post("/v1/dossier-events/batch", json={"events": [body]}, headers=key)
    assert response.status_code == 200, response.text
    item = response.json()["items"][0]
    if item["result"] != "rejected":
        return item["result"]
    return ("rejected", sorted(e["detail"] for e in item["errors"]))


def sequence(seed: int, length: int = 40) -> list[tuple[str, dict[str, Any]]]:
    """(key, event) pairs: few serials and ids, so owners, duplicates and conflicts recur."""
    rng = random.Random(seed)
    sent = []
    for _ in range(length):
        prefix = rng.choice(PREFIXES)
        body = event(
            f"e{rng.randint(1, 3)}",
            f"{prefix}-261130-{rng.randint(1, 3):04d}",
            rng.choice([2, 3, 3, 5]),
            "2026-11-20 10:00",
            unit=rng.choice(UNITS),
            procedure=rng.choice(["P3", "P3", "P3", "NOPE"]),
        )
        sent.append((rng.choice(["own", "rival", "province", "admin"]), body))
    return sent


def renumbered(body: dict[str, Any], by: int = 5000) -> dict[str, Any]:
    """The same event of the twin dossier (serial + ``by``)."""
    prefix, day, serial = body["dossier_code"].rsplit("-", 2)
    return {**body, "dossier_code": f"{prefix}-{day}-{int(serial) + by:04d}"}


@pytest.mark.parametrize("prefix_rule", ["known", "required"])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_single_event_gets_the_answer_a_batch_of_it_gets(
    client: httpx.AsyncClient,
    keys: dict[str, dict[str, str]],
    configure: Any,
    seed: int,
    prefix_rule: str,
) -> None:
    configure(dossier_code_prefix=prefix_rule)
    answers = []
    for name, body in sequence(seed):
        by_one = await single(client, body, keys[name])
        by_batch = await batched(client, renumbered(body), keys[name])
        answers.append((name, body["unit_code"], body["dossier_code"], by_one))
        assert by_one == by_batch, (name, body, answers)
    # Every kind of answer came up, so the comparison held each rule against the other path.
    kinds = {a[3] if isinstance(a[3], str) else a[3][0] for a in answers}
    assert {"stored", "rejected"} <= kinds


async def test_the_rules_of_a_single_event_worked_by_hand(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    code = "H01.01-261130-0001"
    sent = [
        # The commune's own key opens its dossier.
        ("own", event("e1", code, 2, "2026-11-20 10:00"), "stored"),
        # A rival naming the rival's own unit cannot write into it: not its dossier.
        ("rival", event("e2", code, 3, "2026-11-20 11:00", unit="H05.01"), "rejected"),
        # The province above the owner may: its subtree.
        ("province", event("e2", code, 3, "2026-11-20 11:00"), "stored"),
        # The same event again: a duplicate; other content under its id: a conflict.
        ("own", event("e1", code, 2, "2026-11-20 10:00"), "duplicate"),
        ("own", event("e1", code, 5, "2026-11-20 10:00"), "conflict"),
        # A rival cannot open a dossier whose code names another province's commune.
        ("rival", event("e1", "H01.02-261130-0009", 2, "2026-11-20 10:00", unit="H05.01"),
         "rejected"),
        # Nor may the commune name a unit outside its subtree, or an unknown procedure.
        ("own", event("e1", "H01.01-261130-0002", 2, "2026-11-20 10:00", unit="H01.02"),
         "rejected"),
        ("own", event("e1", "H01.01-261130-0003", 2, "2026-11-20 10:00", procedure="NOPE"),
         "rejected"),
    ]  # fmt: skip
    for name, body, expected in sent:
        answer = await single(client, body, keys[name])
        kind = answer if isinstance(answer, str) else answer[0]
        assert kind == expected, (name, body, answer)
    rival_into_own = await single(client, sent[1][1], keys["rival"])
    assert rival_into_own == ("rejected", [OUTSIDE_SCOPE])


JUDGED = (
    "unit_known", "procedure_known", "in_scope", "new_dossier", "prefix_ok", "owned",
    "owner_in_scope", "first", "written", "inserted", "same",
)  # fmt: skip


@pytest.mark.parametrize("scope_root", [None, "H01"])
async def test_a_batch_without_repeats_is_judged_as_by_the_general_statement(
    client: httpx.AsyncClient,
    keys: dict[str, dict[str, str]],
    engine: AsyncEngine,
    scope_root: str | None,
) -> None:
    """A staged batch in which no event is posted twice goes through the statement without
    the earlier-postings window (``once``); the general one must judge it the same, sent
    twice (new, then duplicates and conflicts against what the first sending stored)."""
    rules = repository.StoreRules("api", scope_root, None, False, False)
    seen = {}
    for twin, once in ((0, True), (5000, False)):
        bodies = {}
        for _, body in sequence(7, length=60):
            body = renumbered(body, twin)
            bodies[(body["dossier_code"], body["event_id"])] = body  # each event once
        events = [DossierEventIn.model_validate(b) for b in bodies.values()]
        rows = [repository.row_of(n, e) for n, e in enumerate(events)]
        changed = [repository.row_of(n, e.model_copy(update={"channel": 3 - e.channel % 3}))
                   for n, e in enumerate(events)]  # fmt: skip
        judged = []
        for sent in (rows, rows, changed):
            async with AsyncSession(engine) as session:
                await repository.stage_events(session, sent)
                found = await repository.store_staged(session, None, rules, once=once)
                await session.commit()
            judged.append([tuple(getattr(c, f) for f in JUDGED) for c in found])
        seen[once] = judged
    assert seen[True] == seen[False]
    first, again, other = seen[True]
    assert {j[JUDGED.index("written")] for j in first} == {True, False}  # stored and refused
    assert any(j[JUDGED.index("same")] for j in again)  # duplicates
    assert any(j[JUDGED.index("same")] is False for j in other)  # conflicts
