"""Closing a period by hand: allowed once its last day is over on the local calendar
(Asia/Ho_Chi_Minh, UTC+7), whatever the UTC date says."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from tests.helpers import ADMIN, put_unit


@pytest.mark.parametrize(
    ("instant", "status"),
    [
        # 23:59 local on 31 March: March is not over.
        ("2026-03-31 16:59", 422),
        # Midnight local on 1 April, still 31 March in UTC.
        ("2026-03-31 17:00", 200),
        # 06:59 local on 1 April, the last minute of 31 March in UTC.
        ("2026-03-31 23:59", 200),
        # 07:00 local on 1 April: the UTC date turns too.
        ("2026-04-01 00:00", 200),
    ],
)
async def test_a_month_closes_once_its_last_local_day_is_over(
    client: httpx.AsyncClient, clock: Callable[[datetime], None], instant: str, status: int
) -> None:
    at = datetime.fromisoformat(instant).replace(tzinfo=UTC)
    clock(at)
    await put_unit(client, "H01", "province")
    ranking = await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    # Rankings of a month still running are projections; the same instant decides both.
    assert ranking.json()["projected"] is (status == 422)

    closed = await client.post("/v1/periods/2026-03/close", headers=ADMIN)
    assert closed.status_code == status, closed.text
    if status == 422:
        assert closed.json()["detail"] == "2026-03 has not ended yet."
        assert (await client.get("/v1/periods/2026-03")).json()["status"] == "open"
        return
    state = closed.json()
    assert (state["status"], state["revision"], state["closed_by"]) == ("closed", 1, "admin")
    assert datetime.fromisoformat(state["closed_at"]) == at
    after = await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    assert (after.json()["status"], after.json()["projected"]) == ("closed", False)
    assert [i["unit_code"] for i in after.json()["items"]] == ["H01"]
