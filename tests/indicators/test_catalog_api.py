"""``GET /v1/indicators``: the catalog version in force, public, by date."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import vn
from tests.indicators import switched_catalog


@pytest.fixture
def switched(app: FastAPI) -> Iterator[None]:
    """The app serves a catalog whose next version starts on 1 July 2024."""
    original = getattr(app.state, "indicator_catalog", None)  # None: the shipped one
    app.state.indicator_catalog = switched_catalog(date(2024, 7, 1))
    yield
    app.state.indicator_catalog = original


async def test_the_version_in_force_is_public(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/indicators", params={"at": "2024-04-15"})
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "766-2022"
    assert (body["valid_from"], body["valid_to"]) == ("2022-01-01", "2026-11-30")
    assert [(b["name_vi"], b["min_points"]) for b in body["grade_bands"]] == [
        ("Xuất sắc", 90), ("Tốt", 80), ("Khá", 70), ("Trung bình", 50), ("Yếu", 0),
    ]  # fmt: skip
    assert [(g["code"], g["max_points"]) for g in body["groups"]] == [
        ("CKMB", 18), ("TDGQ", 20), ("CLGQ", 12), ("TTTT", 10), ("MDHL", 18), ("MDSH", 22),
    ]  # fmt: skip
    metrics = {m["code"]: m for g in body["groups"] for m in g["metrics"]}
    assert len(metrics) == 17
    assert metrics["ON_TIME_RATE"]["source"] == "records"
    receiving = metrics["DOSSIER_RECEIVING_SATISFACTION"]
    assert (receiving["rule"], receiving["threshold"], receiving["empty_denominator"]) == (
        "threshold", 90, "zero",  # the rate earning full points, as a percentage
    )  # fmt: skip
    assert metrics["PETITION_HANDLING_SATISFACTION"]["empty_denominator"] == "full"
    assert metrics["DOSSIER_SYNC"]["name_vi"] == "Đồng bộ hồ sơ lên Cổng Dịch vụ công quốc gia"
    assert metrics["DOSSIER_SYNC"]["allow_numerator_above_denominator"] is False
    payment = metrics["ONLINE_PAYMENT"]
    assert payment["rule"] == "tttt_composite"
    assert [(c["code"], c["coefficient"], c["cap"]) for c in payment["components"]] == [
        ("ONLINE_PAYMENT.A", 6, None),
        ("ONLINE_PAYMENT.B", 2.5, 2),
        ("ONLINE_PAYMENT.C", 2.5, None),
    ]


@pytest.mark.parametrize(
    ("now", "version"),
    [("2026-11-30 23:59", "766-2022"), ("2026-12-01 00:00", "766-2026")],
)
async def test_without_a_date_today_is_asked(
    client: httpx.AsyncClient, clock: Callable[[datetime], None], now: str, version: str
) -> None:
    clock(vn(now))  # today in CHISO_TIMEZONE: 1 December starts at 00:00 Vietnam time
    response = await client.get("/v1/indicators")
    assert response.status_code == 200
    assert response.json()["version"] == version


async def test_no_version_in_force_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/indicators", params={"at": "2021-12-31"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "2021-12-31" in response.json()["detail"]


async def test_a_bad_date_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/indicators", params={"at": "2024-02-30"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "at"


async def test_the_answer_switches_on_the_validity_date(
    client: httpx.AsyncClient, switched: None
) -> None:
    before = (await client.get("/v1/indicators", params={"at": "2024-06-30"})).json()
    after = (await client.get("/v1/indicators", params={"at": "2024-07-01"})).json()
    assert (before["version"], before["valid_to"]) == ("766-2022", "2024-06-30")
    assert (after["version"], after["valid_from"]) == ("test-next", "2024-07-01")

    def threshold(body: dict[str, object]) -> object:
        groups = body["groups"]
        assert isinstance(groups, list)
        return next(
            m["threshold"]
            for g in groups
            for m in g["metrics"]
            if m["code"] == "DOSSIER_RECEIVING_SATISFACTION"
        )

    assert (threshold(before), threshold(after)) == (90, 80)
