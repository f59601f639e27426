"""The set-based scoring statement (every unit at once, in SQL) against the per-unit Decimal
reference (app.indicators.scoring.score with the record-based rules of app.scores.records):
generated units, many of them, run through both and compared exactly, figure by figure, as the
snapshots store them; plus hand-computed cases for the edges (zero denominators, missing data,
thresholds, caps, the admin override, a sum on a half-cent)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.indicators.catalog import CatalogVersion, shipped_catalog
from app.indicators.scoring import Counts, score
from app.scores import repository
from app.scores.columns import reference_unit
from app.scores.jobs import refresh_scores
from app.scores.rankings import UnitInfo, as_number, competition_ranks
from app.scores.records import RecordCounts
from app.scores.refresh import _snapshot_values
from tests.helpers import ADMIN, province_with_communes, vn

LEVELS = ("province", "department", "commune")
RECORD_NAMES = [f.name for f in fields(RecordCounts)]


def _version(version_id: str) -> CatalogVersion:
    found = shipped_catalog().version(version_id)
    assert found is not None
    return found


def _counts(rng: random.Random) -> Counts:
    kind = rng.random()
    if kind < 0.12:
        return Counts(0, 0)  # nothing to measure
    if kind < 0.2:
        d = rng.randint(1, 12)
        return Counts(d, d)
    if kind < 0.3:
        return Counts(rng.randint(0, 10**9), rng.randint(1, 10**9))  # large, either way round
    if kind < 0.37:
        d = rng.randint(1, 9)
        return Counts(rng.randint(d + 1, 3 * d), d)  # above the denominator: capped
    d = rng.choice([3, 6, 7, 9, 11, 12, 13, 40, 400, 800, 997, 1000])
    return Counts(rng.randint(0, d), d)


def _records(rng: random.Random) -> RecordCounts:
    received = rng.choice([0, 0, 1, 3, 7, 12, 50, 997])
    values = {n: rng.randint(0, received) for n in RECORD_NAMES}
    values["received"] = received
    return RecordCounts(**values)


Unit = tuple[str, str, dict[str, Counts], dict[str, Counts], Counts | None, RecordCounts | None]


def _generated(version: CatalogVersion, count: int, seed: int) -> list[Unit]:
    rng = random.Random(seed)
    codes = list(version.counted_codes)
    units: list[Unit] = []
    for i in range(count):
        own = {c: _counts(rng) for c in codes if rng.random() < 0.75}
        admin = {c: _counts(rng) for c in codes if rng.random() < 0.12}
        on_time = _counts(rng) if rng.random() < 0.8 else None
        records = _records(rng) if rng.random() < 0.8 else None
        units.append((f"U{i:05d}", rng.choice(LEVELS), own, admin, on_time, records))
    full = {c: Counts(10, 10) for c in codes}
    units += [
        ("E-FULL", "commune", full, {}, Counts(10, 10), RecordCounts(*[10] * 10)),
        ("E-FULL2", "commune", full, {}, Counts(4, 4), RecordCounts(*[4] * 10)),
        ("E-NONE", "commune", {}, {}, None, None),
        ("E-ZERO", "commune", {c: Counts(0, 0) for c in codes}, {}, Counts(0, 0), None),
        ("E-ADMIN", "province", full, {c: Counts(1, 3) for c in codes}, None, None),
    ]
    return units


async def _both(
    engine: AsyncEngine, version: CatalogVersion, units: list[Unit]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(statement's rows by unit, reference snapshot values by unit)``."""
    params: dict[str, Any] = {
        "units": [u[0] for u in units],
        "levels": [u[1] for u in units],
        **{f"sub_{k}": [] for k in ("unit", "code", "admin", "n", "d")},
        "ot_unit": [], "ot_n": [], "ot_d": [],
        **{f"rc_{k}": [] for k in ("unit_code", *RECORD_NAMES)},
        "b_name": [band.name_vi for band in version.grade_bands],
    }  # fmt: skip
    for code, _, own, admin, on_time, records in units:
        for is_admin, found in ((False, own), (True, admin)):
            for metric, c in found.items():
                params["sub_unit"].append(code)
                params["sub_code"].append(metric)
                params["sub_admin"].append(is_admin)
                params["sub_n"].append(c.numerator)
                params["sub_d"].append(c.denominator)
        if on_time is not None:
            params["ot_unit"].append(code)
            params["ot_n"].append(on_time.numerator)
            params["ot_d"].append(on_time.denominator)
        if records is not None:
            params["rc_unit_code"].append(code)
            for name in RECORD_NAMES:
                params[f"rc_{name}"].append(getattr(records, name))
    async with create_sessionmaker(engine)() as session, session.begin():
        rows = await repository.score_units(
            session, version, params, store=False, own_from_arrays=True, detail=True
        )
    statement = {r.unit_code: r for r in rows}
    reference = {}
    for code, level, own, admin, on_time, records in units:
        result, provenance = reference_unit(version, own, admin, on_time, records)
        info = UnitInfo(code, code, level, None, None, ())
        at = datetime(2026, 1, 1, tzinfo=UTC)
        reference[code] = _snapshot_values(info, "2026-01", 1, version, result, at, provenance)
    for level in LEVELS:
        totals = {c: v["total"] for (c, lv, *_), v in zip(units, reference.values(), strict=True)
                  if lv == level}  # fmt: skip
        ranks = competition_ranks(totals)
        for c in totals:
            reference[c]["rank"], reference[c]["ranked_of"] = ranks.get(c), len(ranks)
    return statement, reference


def _stored(value: Any) -> bytes:
    """JSON as a snapshot holds it (through orjson and back), keys sorted: 2.0 and 2 differ."""
    return orjson.dumps(orjson.loads(orjson.dumps(value)), option=orjson.OPT_SORT_KEYS)


def _differences(row: Any, ref: Mapping[str, Any]) -> list[str]:
    found = []
    for name in ("total", "grade", "completeness"):
        if getattr(row, name) != ref[name] or (
            isinstance(ref[name], Decimal) and str(getattr(row, name)) != str(ref[name])
        ):
            found.append(f"{name}: {getattr(row, name)!r} != {ref[name]!r}")
    for name in ("groups", "metrics"):
        if _stored(getattr(row, name)) != _stored(ref[name]):
            found.append(f"{name}: {_stored(getattr(row, name))!r} != {_stored(ref[name])!r}")
    return found


@pytest.mark.parametrize(("version_id", "seed"), [("766-2022", 1), ("766-2026", 2)])
async def test_the_statement_scores_every_unit_as_the_decimal_reference_does(
    engine: AsyncEngine, version_id: str, seed: int
) -> None:
    version = _version(version_id)
    units = _generated(version, 1500, seed)
    statement, reference = await _both(engine, version, units)
    assert set(statement) == set(reference)
    ties = {code for code, row in statement.items() if row.tie}
    different = {code for code in statement if _differences(statement[code], reference[code])}
    # Where the two could round differently the statement says so (and the refresh rescores
    # those units with the reference); everywhere else every stored figure is identical.
    assert different <= ties, {c: _differences(statement[c], reference[c]) for c in different}
    assert len(ties) <= len(units) // 50
    # Ranks follow the totals: where no marked unit's total moves, every rank is the same.
    if all(statement[c].total == reference[c]["total"] for c in ties):
        for code, row in statement.items():
            assert (row.rank, row.ranked_of) == (
                reference[code]["rank"],
                reference[code]["ranked_of"],
            ), code
    # The generated units reach every branch: complete (graded), partial, none at all.
    assert statement["E-FULL"].grade is not None and statement["E-FULL"].completeness == 1
    assert statement["E-NONE"].total is None and statement["E-NONE"].completeness == 0
    assert any(r.total is not None and r.grade is None for r in statement.values())


async def test_edges_by_hand(engine: AsyncEngine) -> None:
    """766-2022, one commune: PUBLISH_ON_TIME 1/3 of 6 points (2.00), PUBLIC_UPDATE_ON_TIME
    0/0 (an empty denominator scores 0), PETITION_HANDLING_SATISFACTION 0/0 (its catalog entry
    says full points), DOSSIER_RECEIVING_SATISFACTION 17/20 against a threshold of 0.90,
    ONLINE_PAYMENT's components A 1/2 (6 × 0.5 = 3), B 1/1 (2.5, capped at 2), C missing: the
    composite is missing. Everything else missing: no grade."""
    version = _version("766-2022")
    own = {
        "PUBLISH_ON_TIME": Counts(1, 3),
        "PUBLIC_UPDATE_ON_TIME": Counts(0, 0),
        "PETITION_HANDLING_SATISFACTION": Counts(0, 0),
        "DOSSIER_RECEIVING_SATISFACTION": Counts(17, 20),
        "ONLINE_PAYMENT.A": Counts(1, 2),
        "ONLINE_PAYMENT.B": Counts(1, 1),
    }
    statement, reference = await _both(engine, version, [("H", "commune", own, {}, None, None)])
    row = statement["H"]
    assert not _differences(row, reference["H"])
    metrics = {m["code"]: m for m in row.metrics}
    assert metrics["PUBLISH_ON_TIME"]["points"] == 2.0
    assert metrics["PUBLIC_UPDATE_ON_TIME"]["points"] == 0.0
    satisfaction = version.measure("PETITION_HANDLING_SATISFACTION")
    assert satisfaction is not None
    assert metrics["PETITION_HANDLING_SATISFACTION"]["points"] == float(
        satisfaction.metric.max_points
    )
    receiving = version.measure("DOSSIER_RECEIVING_SATISFACTION")
    assert receiving is not None and receiving.metric.threshold == Decimal("0.90")
    # max × 0.85 / 0.90, two decimals
    expected = (receiving.metric.max_points * Decimal("0.85") / Decimal("0.9")).quantize(
        Decimal("0.01")
    )
    assert metrics["DOSSIER_RECEIVING_SATISFACTION"]["points"] == float(expected)
    payment = metrics["ONLINE_PAYMENT"]
    assert payment["points"] is None and payment["numerator"] is None
    parts = {c["code"]: c for c in payment["components"]}
    assert parts["ONLINE_PAYMENT.A"]["points"] == 3.0  # 6 × 1/2
    assert parts["ONLINE_PAYMENT.B"]["points"] == 2.0  # min(2, 2.5 × 1)
    assert parts["ONLINE_PAYMENT.C"]["points"] is None
    assert row.grade is None and row.rank == 1 and row.ranked_of == 1


async def test_a_sum_on_a_half_cent_is_handed_to_the_reference(engine: AsyncEngine) -> None:
    """Three metrics of 1/3 point each and one of 0.005 sum to exactly x.xx5: Decimal's
    28-digit running sum can land just below it, so the statement marks the unit."""
    document = _version("766-2022")
    codes = [m.code for _, m in document.metrics() if not m.components and m.rule.value == "linear"]
    by_max: dict[Decimal, list[str]] = {}
    for code in codes:
        measure = document.measure(code)
        assert measure is not None
        by_max.setdefault(measure.metric.max_points, []).append(code)
    two = by_max.get(Decimal(2), [])
    if len(two) < 4:
        pytest.skip("needs four linear metrics of 2 points")
    # 2 × 1/6 = 1/3 (three times), 2 × 1/400 = 0.005: exactly 1.005
    own = {two[0]: Counts(1, 6), two[1]: Counts(1, 6), two[2]: Counts(1, 6),
           two[3]: Counts(1, 400)}  # fmt: skip
    statement, reference = await _both(engine, document, [("H", "commune", own, {}, None, None)])
    assert statement["H"].tie
    assert reference["H"]["total"] in (Decimal("1.00"), Decimal("1.01"))


def test_the_reference_is_what_scoring_already_gave() -> None:
    """The reference is today's per-unit computation: the Decimal engine unchanged."""
    version = _version("766-2022")
    result, provenance = reference_unit(
        version, {"PUBLISH_ON_TIME": Counts(1, 3)}, {}, Counts(3, 4), None
    )
    assert result.metric("PUBLISH_ON_TIME").points is not None
    assert result.metric("ON_TIME_RATE").points == Decimal(15)  # 20 × 3/4
    assert provenance == {}


async def test_a_refresh_stores_the_reference_figures_for_a_half_cent_sum(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    clock: Callable[[datetime], None],
) -> None:
    """Through the worker's refresh: H01.01's four 2-point metrics at 1/6, 1/6, 1/6 and
    1/400 sum to exactly 1.005; the stored total, groups and ranks are what the Decimal
    engine gives for the same counts (H01.02 with 1/2 of one of them, 1.00, ranks below)."""
    version = _version("766-2022")
    two = [m.code for _, m in version.metrics() if m.max_points == 2 and m.rule.value == "linear"]
    if len(two) < 4:
        pytest.skip("needs four linear metrics of 2 points")
    clock(vn("2024-12-31 10:00"))
    await province_with_communes(client)
    values = [(two[0], 1, 6), (two[1], 1, 6), (two[2], 1, 6), (two[3], 1, 400)]
    body = {
        "values": [
            {"unit_code": "H01.01", "period": "2024-11", "metric_code": code,
             "numerator": n, "denominator": d}
            for code, n, d in values
        ]
        + [{"unit_code": "H01.02", "period": "2024-11", "metric_code": two[0],
            "numerator": 1, "denominator": 2}]
    }  # fmt: skip
    response = await client.post("/v1/indicator-values/batch", json=body, headers=ADMIN)
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: vn("2024-12-31 10:05")}  # fmt: skip
    assert "2024-11" in await refresh_scores(ctx)
    async with create_sessionmaker(engine)() as session:
        stored = {s.unit_code: s for s in await repository.snapshots(session, "2024-11")}
    expected = score(version, {code: Counts(n, d) for code, n, d in values})
    assert expected.total is not None
    h01 = stored["H01.01"]
    assert (h01.total, h01.rank, h01.ranked_of) == (expected.total, 1, 2)
    assert h01.groups == {g.code: as_number(g.points) for g in expected.groups}
    assert (stored["H01.02"].total, stored["H01.02"].rank) == (Decimal("1.00"), 2)
