"""The index from the records (catalog 766-2026): hand-counted numerators and denominators of
every record-fed metric, with the edge rules, on the unit's scorecard without any submission.

Procedures: FEE charges fees and must return a paper result; FREE does neither. December 2026
is the first month of 766-2026.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.indicators.catalog import shipped_catalog
from app.indicators.scoring import Counts, score
from app.scores.jobs import refresh_scores
from app.scores.records import counts_from_records
from tests.helpers import (
    ADMIN,
    create_key,
    event,
    get_dossier,
    post_events,
    put_procedure,
    put_unit,
    vn,
)

NOW = vn("2027-01-10 09:00")
DERIVED = {"Prefer": "return=representation"}

FILE = "https://dvc.example.vn/files/1.pdf"
FEE_50K = [{"TenPhiLePhi": "Lệ phí", "Gia": "50000"}]


def record(
    n: int, procedure: str, channel: str = "1", unit: str = "H01.01", **fields: Any
) -> dict[str, Any]:
    """A dossier received on 1 December 2026, still being processed (due on the 4th)."""
    body = {
        "MaHoSo": f"{unit}-261201-{n:04d}", "MaTTHC": procedure, "KenhThucHien": channel,
        "TrangThaiHoSo": "2", "NgayTiepNhan": "20261201080000", "NgayHenTra": "20261204170000",
    }  # fmt: skip
    body.update(fields)
    return body


def paper(file: bool = True, store: bool = False, digitised: bool = False) -> dict[str, str]:
    return {
        "MaThanhPhanHoSo": "TP1", "DuongDanTaiTepTin": FILE if file else "",
        "DuocSoHoa": "1" if digitised else "0", "DuocLayTuKhoDMQG": "1" if store else "0",
    }  # fmt: skip


def result(file: bool = True) -> dict[str, str]:
    return {"TenGiayTo": "Kết quả", "DuongDanTepTinKetQua": FILE if file else ""}


# The twelve records of the "Done when", and what each one counts for:
#   3.6 (A): charged = FEE dossiers less all-zero fees; paid = DuocThanhToanTrucTuyen 1 or 2
#   3.3: KenhThucHien 2, and an electronic result for FEE (paper result)
#   4.1: FEE dossiers with a result file; 4.2: a paper with a file (+ result file for FEE)
#   4.3: HoSoCoThanhPhanSoHoa; 4.4: a paper from the store or a result file
#   4.5: VNeID, a paper from the store, or the population database
TWELVE = [
    # charged, paid; online (e-result); 4.1 ✓; 4.2 ✓; 4.3 ✓; 4.4 ✓; 4.5 ✓ (store)
    record(1, "FEE", "2", DuocThanhToanTrucTuyen="1", DanhSachLePhi=FEE_50K,
           DanhSachGiayToKetQua=[result()], TaiLieuNop=[paper(store=True)],
           HoSoCoThanhPhanSoHoa="1"),
    # charged, paid through the province's gateway; online but no e-result; 4.2 ✗ (no result)
    record(2, "FEE", "2", DuocThanhToanTrucTuyen="2", DanhSachLePhi=[{"Gia": "20000"}],
           DanhSachGiayToKetQua=[result(file=False)], TaiLieuNop=[paper()],
           HoSoCoThanhPhanSoHoa="0"),
    # charged, DuocThanhToanTrucTuyen 3: not paid online; 4.3 ✓
    record(3, "FEE", DuocThanhToanTrucTuyen="3", DanhSachLePhi=[{"Gia": "10000"}],
           HoSoCoThanhPhanSoHoa="1"),
    # every fee 0: not charged
    record(4, "FEE", DuocThanhToanTrucTuyen="0", DanhSachLePhi=[{"Gia": "0"}, {"Gia": "0"}]),
    # every fee 0 and "paid online": neither charged nor paid; online without e-result
    record(5, "FEE", "2", DuocThanhToanTrucTuyen="1", DanhSachLePhi=[{"Gia": "0"}]),
    # charged, an unknown payment code: not paid online
    record(6, "FEE", DuocThanhToanTrucTuyen="x", DanhSachLePhi=[{"Gia": "30000"}]),
    # charged (no fee list: the procedure's fees stand), paid; online without e-result
    record(7, "FEE", "2", DuocThanhToanTrucTuyen="1"),
    # online (no paper result due); 4.5 ✓ (VNeID)
    record(8, "FREE", "2", DuocThanhToanTrucTuyen="0", TaiKhoanDuocXacThucVoiVNeID="1"),
    # 4.5 ✓ (the population database)
    record(9, "FREE", DSKetNoiCSDL=[{"MaCSDL": "CSDLQGDC"}]),
    # by post; 4.2 ✓ (a paper with a file, no paper result due)
    record(10, "FREE", "3", TaiLieuNop=[paper()]),
    record(11, "FREE"),
    # online; 4.3 ✓; 4.4 ✓ and 4.5 ✓ (a paper from the store, without a file)
    record(12, "FREE", "2", HoSoCoThanhPhanSoHoa="1", TaiLieuNop=[paper(file=False, store=True)]),
]  # fmt: skip

EXPECTED = {  # code: (numerator, denominator)
    "DOSSIER_SYNC": (12, 12),
    "FULL_ONLINE_RATE": (3, 12),  # 1, 8, 12
    "ONLINE_PAYMENT.A": (3, 5),  # paid 1, 2, 7 of charged 1, 2, 3, 6, 7
    "ORIGINAL_RESULT_AVAILABLE": (1, 7),  # 1 of FEE's 1–7
    "SO_HOA_GIAY_TO_GIAI_QUYET": (2, 12),  # 1, 10
    "REUSED_DIGITIZED_DATA": (3, 12),  # 1, 3, 12
    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (2, 12),  # 1, 12
    "CITIZEN_DATA_CONNECTED_DOSSIER": (4, 12),  # 1, 8, 9, 12
}


@pytest.fixture
async def refresh(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> Callable[[], Any]:  # fmt: skip
    clock(NOW)
    await put_unit(client, "H01", "province", name="UBND tỉnh An Giang")
    await put_unit(client, "H01.01", "commune", "H01")
    await put_unit(client, "H01.02", "commune", "H01")
    await put_procedure(client, "FEE", 3, has_fees=True, paper_result=True)
    await put_procedure(client, "FREE", 3, has_fees=False, paper_result=False)
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: NOW}  # fmt: skip

    async def run() -> Any:
        return await refresh_scores(ctx)

    return run


async def send(client: httpx.AsyncClient, records: list[dict[str, Any]], unit: str) -> None:
    response = await client.post(
        f"/v1/portal/dossiers?madonvi={unit}", json=records, headers={**ADMIN, **DERIVED}
    )
    assert response.status_code == 200, response.text
    assert response.json()["error_code"] == 0, response.text


async def card(client: httpx.AsyncClient, unit: str, period: str = "2026-12") -> dict[str, Any]:
    response = await client.get(f"/v1/units/{unit}/scorecard", params={"period": period})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def lines(scorecard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every metric and component line by code."""
    found = {}
    for group in scorecard["groups"]:
        for metric in group["metrics"]:
            found[metric["code"]] = metric
            found.update({c["code"]: c for c in metric["components"]})
    return found


def counts(scorecard: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    return {
        code: (line["numerator"], line["denominator"])
        for code, line in lines(scorecard).items()
        if code in EXPECTED
    }


async def test_twelve_records_give_the_hand_counted_figures_without_any_submission(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    await send(client, TWELVE, "H01.01")
    await refresh()
    commune = await card(client, "H01.01")
    assert commune["catalog_version"] == "766-2026"
    assert counts(commune) == EXPECTED
    found = lines(commune)
    # Full points from the operator's thresholds: 4.3 at 3/12 of 80%: 2 × 0.25 / 0.8 = 0.625;
    # 3.3 at 3/12 of 50%: 12 × 0.25 / 0.5 = 6; 4.2 at 2/12 of 80%: 4 × (1/6) / 0.8 = 0.833….
    assert [
        (found[code]["points"], found[code]["full_marks_rate"])
        for code in ("REUSED_DIGITIZED_DATA", "FULL_ONLINE_RATE", "SO_HOA_GIAY_TO_GIAI_QUYET")
    ] == [(0.63, 80.0), (6.0, 50.0), (0.83, 80.0)]
    # 3.6 is TTTT's A: 6 × 3/5 = 3.6 points, shown like any metric, from the records.
    payment = found["ONLINE_PAYMENT.A"]
    assert (payment["points"], payment["source"], payment["indicator"]) == (
        3.6,
        "records",
        "3.6",
    )
    # B and C are still submitted: none were, so they (and the composite) are missing.
    assert found["ONLINE_PAYMENT.B"]["missing"] and found["ONLINE_PAYMENT"]["missing"]
    # The province sees its commune's dossiers; the other commune has none: missing, not 0.
    province = await card(client, "H01")
    assert counts(province) == EXPECTED
    other = lines(await card(client, "H01.02"))
    assert (
        other["REUSED_DIGITIZED_DATA"]["numerator"],
        other["REUSED_DIGITIZED_DATA"]["denominator"],
    ) == (0, 0)
    assert other["REUSED_DIGITIZED_DATA"]["points"] is None
    assert other["REUSED_DIGITIZED_DATA"]["missing"] is True


async def test_a_provinces_score_moves_when_its_communes_records_arrive(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    await send(client, TWELVE[:2], "H01.01")
    await refresh()
    before = await card(client, "H01")
    assert lines(before)["REUSED_DIGITIZED_DATA"]["numerator"] == 1  # record 1 of 2
    # The second commune's records arrive: 10 dossiers, every one with digitised parts.
    later = [record(100 + n, "FREE", unit="H01.02", HoSoCoThanhPhanSoHoa="1") for n in range(10)]
    await send(client, later, "H01.02")
    await refresh()
    after = await card(client, "H01")
    reused = lines(after)["REUSED_DIGITIZED_DATA"]
    assert (reused["numerator"], reused["denominator"]) == (11, 12)
    # 2 × (11/12) / 0.8 ≥ 2: full points, up from 2 × (1/2) / 0.8 = 1.25.
    assert (lines(before)["REUSED_DIGITIZED_DATA"]["points"], reused["points"]) == (1.25, 2.0)
    assert after["total"] != before["total"]
    mdsh = {g["code"]: g["points"] for g in after["groups"]}["MDSH"]
    assert mdsh != {g["code"]: g["points"] for g in before["groups"]}["MDSH"]


async def test_records_without_receipt_and_withdrawn_before_acceptance_do_not_count(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    await send(
        client,
        [
            record(1, "FREE", HoSoCoThanhPhanSoHoa="1"),
            # No NgayTiepNhan: not received, not counted.
            {**record(2, "FREE", HoSoCoThanhPhanSoHoa="1"), "NgayTiepNhan": ""},
            # Received in November: another period.
            record(3, "FREE", HoSoCoThanhPhanSoHoa="1", NgayTiepNhan="20261130160000"),
        ],
        "H01.01",
    )
    # Withdrawn by the applicant before the desk accepted it (events: submitted, withdrawn).
    withdrawn = [
        event("w1", "H01.01-261201-0009", 1, "2026-12-01 08:00", procedure="FREE",
              has_digitized_parts=True),
        event("w2", "H01.01-261201-0009", 7, "2026-12-01 09:00", procedure="FREE"),
    ]  # fmt: skip
    await post_events(client, withdrawn)
    assert (await get_dossier(client, "H01.01-261201-0009"))["counted"] is False
    # Its receipt placed by chiso (at the record's arrival, whatever the day): not counted
    # either, in any month.
    assert (await get_dossier(client, "H01.01-261201-0002"))["counted"] is False
    await refresh()
    scored = lines(await card(client, "H01.01"))
    reused = scored["REUSED_DIGITIZED_DATA"]
    assert (reused["numerator"], reused["denominator"]) == (1, 1)
    # Nor in 2.1: records 1 and 3 only (3, received on 30 November, still pending in
    # December), both past their due time (4 December) at December's end.
    on_time = scored["ON_TIME_RATE"]
    assert (on_time["numerator"], on_time["denominator"]) == (0, 2)


async def test_a_submitted_reporting_total_widens_1_4_and_3_3(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    await send(client, TWELVE, "H01.01")
    _, unit_key = await create_key(client, ["indicators:write"], "H01.01")
    # The reporting system counted 20 dossiers received in December: 1.4 = 12/20, and 3.3's
    # 3/12 times the sync rate 12/20 = 3/20.
    body = {"unit_code": "H01.01", "period": "2026-12", "metric_code": "DOSSIER_SYNC",
            "numerator": 12, "denominator": 20}  # fmt: skip
    assert (
        await client.post("/v1/indicator-values", json=body, headers=unit_key)
    ).status_code == 201
    await refresh()
    found = counts(await card(client, "H01.01"))
    assert (found["DOSSIER_SYNC"], found["FULL_ONLINE_RATE"]) == ((12, 20), (3, 20))
    # A total below the records' count does not lower it: max(12, 5) = 12.
    body |= {"numerator": 5, "denominator": 5}
    assert (
        await client.post("/v1/indicator-values", json=body, headers=unit_key)
    ).status_code == 201
    await refresh()
    sync = lines(await card(client, "H01.01"))["DOSSIER_SYNC"]
    assert (sync["numerator"], sync["denominator"], sync["scored_from"]) == (12, 12, "records")
    assert (sync["submitted"]["numerator"], sync["submitted"]["denominator"]) == (5, 5)


async def test_5_4_takes_the_late_share_from_the_records_and_the_complaints_submitted(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    # Four dossiers received 1 Dec, due Fri 4 Dec 17:00: three finished on time, one late.
    finished = [
        record(n, "FREE", TrangThaiHoSo="10", NgayKetThucXuLy=end, NgayTra=end)
        for n, end in ((1, "20261202090000"), (2, "20261202090000"), (3, "20261203090000"),
                       (4, "20261210090000"))
    ]  # fmt: skip
    await send(client, finished, "H01.01")
    await refresh()
    satisfaction = lines(await card(client, "H01.01"))["DOSSIER_RECEIVING_SATISFACTION"]
    assert satisfaction["missing"] is True  # no complaint share submitted: not guessed
    # 1 of 10 rated dossiers drew a complaint: 1 − 1/4 − 1/10 = 0.65 = 26/40.
    body = {
        "unit_code": "H01.01",
        "period": "2026-12",
        "metric_code": "DOSSIER_RECEIVING_SATISFACTION",
        "numerator": 1,
        "denominator": 10,
    }
    # Made by the provincial office (admin scope): it is the submitted part, not an override.
    assert (await client.post("/v1/indicator-values", json=body, headers=ADMIN)).status_code == 201
    await refresh()
    satisfaction = lines(await card(client, "H01.01"))["DOSSIER_RECEIVING_SATISFACTION"]
    assert (satisfaction["numerator"], satisfaction["denominator"]) == (26, 40)
    assert (satisfaction["scored_from"], satisfaction["overridden"]) == ("records", False)
    assert (satisfaction["submitted"]["numerator"], satisfaction["submitted"]["denominator"]) == (
        1, 10,
    )  # fmt: skip
    # 6 × 0.65 / 0.9 = 4.333… → 4.33
    assert satisfaction["points"] == 4.33


def test_5_4_with_nothing_on_one_side_takes_the_other_share_alone() -> None:
    code = ("DOSSIER_RECEIVING_SATISFACTION",)
    complaints = {"DOSSIER_RECEIVING_SATISFACTION": Counts(1, 10)}
    # No dossier in the period: 1 − 1/10.
    assert counts_from_records(code, None, complaints, None) == {code[0]: Counts(9, 10)}
    # Nobody rated: 1 − 1/4 late.
    nobody = {"DOSSIER_RECEIVING_SATISFACTION": Counts(0, 0)}
    assert counts_from_records(code, None, nobody, Counts(3, 4)) == {code[0]: Counts(3, 4)}
    # Neither: nothing to measure (0/0), which 766-2026 shows as missing.
    assert counts_from_records(code, None, nobody, None) == {code[0]: Counts(0, 0)}
    # Never below 0: 1 − 4/4 − 5/10.
    assert counts_from_records(code, None, {code[0]: Counts(5, 10)}, Counts(0, 4)) == {
        code[0]: Counts(0, 40)
    }


def test_an_empty_denominator_is_missing_where_the_catalog_says_so() -> None:
    version = shipped_catalog().version("766-2026")
    assert version is not None
    result = score(
        version,
        {
            "REUSED_DIGITIZED_DATA": Counts(0, 0),
            "ONLINE_PAYMENT.A": Counts(0, 0),
            "ONLINE_PAYMENT.B": Counts(1, 1),
            "ONLINE_PAYMENT.C": Counts(1, 1),
        },
    )
    assert result.metric("REUSED_DIGITIZED_DATA").points is None
    assert result.metric("ONLINE_PAYMENT").points is None  # A is missing, so is the composite
    # 766-2022 scored an empty denominator 0.
    old = shipped_catalog().version("766-2022")
    assert old is not None
    assert (
        score(old, {"REUSED_DIGITIZED_DATA": Counts(0, 0)}).metric("REUSED_DIGITIZED_DATA").points
        == 0
    )


async def test_rank_and_score_changes_across_the_version_change_use_the_new_rules(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    await put_unit(client, "H05", "province", name="UBND tỉnh Bắc Ninh")
    submit = [
        # November (766-2022): H01 6 + 2 = 8, H05 6 → ranks 1, 2.
        ("H01", "2026-11", "PUBLISH_ON_TIME", 10), ("H01", "2026-11", "REUSED_DIGITIZED_DATA", 10),
        ("H05", "2026-11", "PUBLISH_ON_TIME", 10),
        # December (766-2026): H01 6, H05 3 → ranks 1, 2.
        ("H01", "2026-12", "PUBLISH_ON_TIME", 10), ("H05", "2026-12", "PUBLISH_ON_TIME", 5),
    ]  # fmt: skip
    # Each province submits its own (an admin-scope value would override the records).
    for province in ("H01", "H05"):
        _, key = await create_key(client, ["indicators:write"], province)
        values = [{"unit_code": u, "period": p, "metric_code": m, "numerator": n,
                   "denominator": 10} for u, p, m, n in submit if u == province]  # fmt: skip
        response = await client.post(
            "/v1/indicator-values/batch", json={"values": values}, headers=key
        )
        assert response.json()["rejected"] == 0, response.text
    await refresh()
    november = (
        await client.get("/v1/rankings", params={"level": "province", "period": "2026-11"})
    ).json()
    assert [(i["unit_code"], i["total"]) for i in november["items"]] == [("H01", 8.0), ("H05", 6.0)]
    december = (
        await client.get("/v1/rankings", params={"level": "province", "period": "2026-12"})
    ).json()
    assert december["catalog_version"] == "766-2026"
    rows = {i["unit_code"]: i for i in december["items"]}
    # November rescored with 766-2026: 4.3 comes from the records (none), so H01's submitted
    # 10/10 does not score: H01 6, H05 6, both rank 1. Against that, not against 8 and 6:
    assert (rows["H01"]["rank"], rows["H01"]["rank_change"], rows["H01"]["score_change"]) == (
        1,
        0,
        0.0,
    )
    assert (rows["H05"]["rank"], rows["H05"]["rank_change"], rows["H05"]["score_change"]) == (
        2,
        -1,
        -3.0,
    )
    # The scorecard shows the same changes.
    h01 = await card(client, "H01")
    assert (h01["rank_change"], h01["score_change"]) == (0, 0.0)


async def test_a_units_own_value_is_shown_not_scored_and_the_admins_overrides(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    await send(client, TWELVE, "H01.01")
    _, unit_key = await create_key(client, ["indicators:write"], "H01.01")
    # 2.1 is still refused; every other record-fed metric takes submissions.
    refused = {"unit_code": "H01.01", "period": "2026-12", "metric_code": "ON_TIME_RATE",
               "numerator": 1, "denominator": 1}  # fmt: skip
    assert (
        await client.post("/v1/indicator-values", json=refused, headers=unit_key)
    ).status_code == 422
    own = {"unit_code": "H01.01", "period": "2026-12", "metric_code": "REUSED_DIGITIZED_DATA",
           "numerator": 10, "denominator": 10}  # fmt: skip
    stored = await client.post("/v1/indicator-values", json=own, headers=unit_key)
    assert (stored.status_code, stored.json()["admin_scope"], stored.json()["source"]) == (
        201, False, "records",
    )  # fmt: skip
    await refresh()
    reused = lines(await card(client, "H01.01"))["REUSED_DIGITIZED_DATA"]
    # The computed 3/12 scores (0.63); the unit's 10/10 (2 points) is shown beside it.
    assert (reused["numerator"], reused["denominator"], reused["points"]) == (3, 12, 0.63)
    assert (reused["scored_from"], reused["overridden"]) == ("records", False)
    assert reused["computed"] == {
        "numerator": 3,
        "denominator": 12,
        "rate": 25.0,
        "points": 0.63,
    }
    assert reused["submitted"] == {
        "numerator": 10,
        "denominator": 10,
        "rate": 100.0,
        "points": 2.0,
    }

    # The provincial office enters the portal's own figure, 6/12: it overrides.
    portal = own | {"numerator": 6, "denominator": 12}
    assert (
        await client.post("/v1/indicator-values", json=portal, headers=ADMIN)
    ).status_code == 201
    # The unit submits again afterwards: its value is the latest, but it cannot undo the override.
    again = own | {"numerator": 9, "denominator": 10}
    assert (
        await client.post("/v1/indicator-values", json=again, headers=unit_key)
    ).status_code == 201
    await refresh()
    scorecard = await card(client, "H01.01")
    reused = lines(scorecard)["REUSED_DIGITIZED_DATA"]
    # 2 × 0.5 / 0.8 = 1.25
    assert (reused["numerator"], reused["denominator"], reused["points"]) == (6, 12, 1.25)
    assert (reused["scored_from"], reused["overridden"]) == ("admin", True)
    assert reused["computed"]["numerator"] == 3 and reused["submitted"]["numerator"] == 9
    # A metric the records cannot feed scores from submissions, as before.
    assert lines(scorecard)["PUBLISH_ON_TIME"]["scored_from"] == "submitted"
    # The office confirming the unit's own figure makes it an override: a new revision.
    confirmed = await client.post("/v1/indicator-values", json=again, headers=ADMIN)
    assert (confirmed.status_code, confirmed.json()["admin_scope"]) == (201, True)
    await refresh()
    reused = lines(await card(client, "H01.01"))["REUSED_DIGITIZED_DATA"]
    assert (reused["numerator"], reused["denominator"], reused["scored_from"]) == (9, 10, "admin")


async def test_a_desk_posting_events_with_the_facts_feeds_the_same_metrics(
    client: httpx.AsyncClient, refresh: Callable[[], Any]
) -> None:
    def received(n: int, procedure: str, channel: int = 1, **facts: Any) -> dict[str, Any]:
        code = f"H01.01-261201-{n:04d}"
        return event(f"{code}-r", code, 2, "2026-12-01 08:00", procedure=procedure,
                     channel=channel, received_at="2026-12-01 08:00", **facts)  # fmt: skip

    await post_events(client, [
        # charged, paid (gateway); online with an e-result; 4.2, 4.3, 4.4, 4.5 (store)
        received(1, "FEE", 2, payment_code="2", fees_count=1, fees_total=50000,
                 fees_all_zero=False, results_total=1, results_with_file=1, papers_total=1,
                 papers_with_file=1, papers_from_national_store=1, has_digitized_parts=True),
        # every fee 0: not charged (paid_online alone would have counted it paid)
        received(2, "FEE", paid_online=True, fees_all_zero=True),
        # charged; the code 3 wins over paid_online: not paid online
        received(3, "FEE", payment_code="3", paid_online=True),
        # online, no paper result due; 4.5 (VNeID and the population database)
        received(4, "FREE", 2, vneid_verified=True, databases=["CSDLQGDC", "CSDLQGDC"]),
    ])  # fmt: skip
    await refresh()
    assert counts(await card(client, "H01.01")) == {
        "DOSSIER_SYNC": (4, 4), "FULL_ONLINE_RATE": (2, 4), "ONLINE_PAYMENT.A": (1, 2),
        "ORIGINAL_RESULT_AVAILABLE": (1, 3), "SO_HOA_GIAY_TO_GIAI_QUYET": (1, 4),
        "REUSED_DIGITIZED_DATA": (1, 4), "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (1, 4),
        "CITIZEN_DATA_CONNECTED_DOSSIER": (2, 4),
    }  # fmt: skip
    # A later event of dossier 3 states it was paid on the portal: the latest statement wins.
    code = "H01.01-261201-0003"
    await post_events(client, [event(f"{code}-p", code, 4, "2026-12-02 08:00", procedure="FEE",
                                     payment_code="1")])  # fmt: skip
    await refresh()
    assert counts(await card(client, "H01.01"))["ONLINE_PAYMENT.A"] == (2, 2)
