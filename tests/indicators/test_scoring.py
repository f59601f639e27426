"""The scoring engine on hand-chosen counts. Every expected value is worked out in a comment."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.indicators.catalog import Metric, Rule, catalog_in_force
from app.indicators.periods import Period
from app.indicators.scoring import Counts, aggregate, resolve_period_counts, score
from tests.indicators import full_marks, switched_catalog

V = catalog_in_force(date(2024, 4, 1))
D = Decimal


def points(code: str, counts: Counts | None) -> Decimal | None:
    return score(V, {code: counts}).metric(code).points


# --- one rule at a time ------------------------------------------------------------------


def test_linear_is_max_times_rate() -> None:
    # PUBLISH_ON_TIME (max 6): 45 / 50 = 0.9 → 6 × 0.9 = 5.4
    assert points("PUBLISH_ON_TIME", Counts(45, 50)) == D("5.4")
    # FULL_ONLINE_RATE (max 12): 1 / 3 → 12 / 3 = 4
    assert points("FULL_ONLINE_RATE", Counts(1, 3)) == D(4)
    # PUBLIC_UPDATE_ON_TIME (max 4): 0 / 7 → 0
    assert points("PUBLIC_UPDATE_ON_TIME", Counts(0, 7)) == 0


def test_empty_denominator_scores_zero_unless_the_metric_says_full() -> None:
    # DOSSIER_SYNC (max 6): nothing to sync → 0 by default
    assert points("DOSSIER_SYNC", Counts(0, 0)) == 0
    # PETITION_HANDLING_SATISFACTION (max 6): no petitions → full 6
    assert points("PETITION_HANDLING_SATISFACTION", Counts(0, 0)) == 6
    # PETITION_PROCESSING_ON_TIME keeps the default: 0
    assert points("PETITION_PROCESSING_ON_TIME", Counts(0, 0)) == 0


def test_threshold_rule_reaches_full_points_at_the_threshold_and_is_capped() -> None:
    code = "DOSSIER_RECEIVING_SATISFACTION"  # max 6, threshold 0.90
    # 81 / 100 = 0.81 → 6 × 0.81 / 0.90 = 4.86 / 0.90 = 5.4
    assert points(code, Counts(81, 100)) == D("5.4")
    # 90 / 100 = 0.90 → 6 × 0.90 / 0.90 = 6 (exactly the threshold)
    assert points(code, Counts(90, 100)) == 6
    # 95 / 100 → 6 × 0.95 / 0.90 = 6.333… → capped at 6
    assert points(code, Counts(95, 100)) == 6
    # REUSED_DIGITIZED_DATA (max 2, threshold 0.80): 30 / 50 = 0.6 → 2 × 0.6 / 0.8 = 1.5
    assert points("REUSED_DIGITIZED_DATA", Counts(30, 50)) == D("1.5")
    # 0 / 0 → 0 (default policy applies to threshold rules too)
    assert points("REUSED_DIGITIZED_DATA", Counts(0, 0)) == 0


def test_tttt_composite() -> None:
    def tttt(a: Counts | None, b: Counts | None, c: Counts | None) -> Decimal | None:
        counts = {"ONLINE_PAYMENT.A": a, "ONLINE_PAYMENT.B": b, "ONLINE_PAYMENT.C": c}
        return score(V, counts).metric("ONLINE_PAYMENT").points

    # A = 40/50 = 0.8 → 6 × 0.8 = 4.8; B = 3/10 → min(2, 2.5 × 0.3 = 0.75) = 0.75;
    # C = 2/10 → 2.5 × 0.2 = 0.5.  4.8 + 0.75 + 0.5 = 6.05
    assert tttt(Counts(40, 50), Counts(3, 10), Counts(2, 10)) == D("6.05")
    # B = 9/10 → 2.5 × 0.9 = 2.25, capped at 2: 4.8 + 2 + 0.5 = 7.3
    assert tttt(Counts(40, 50), Counts(9, 10), Counts(2, 10)) == D("7.3")
    # All full: 6 + min(2, 2.5) + 2.5 = 10.5 → capped at the metric's 10
    assert tttt(Counts(5, 5), Counts(5, 5), Counts(5, 5)) == 10
    # No dossier with a fee (A = 0/0 → 0): 0 + 0.75 + 0.5 = 1.25
    assert tttt(Counts(0, 0), Counts(3, 10), Counts(2, 10)) == D("1.25")


def test_composite_with_a_missing_component_is_missing_not_zero() -> None:
    result = score(V, {"ONLINE_PAYMENT.A": Counts(40, 50), "ONLINE_PAYMENT.B": Counts(3, 10)})
    metric = result.metric("ONLINE_PAYMENT")
    assert metric.points is None
    assert metric.missing_components == ("ONLINE_PAYMENT.C",)
    # The components that do have data are still shown: A = 6 × 0.8 = 4.8, B = 0.75
    assert [c.points for c in metric.components] == [D("4.8"), D("0.75"), None]
    assert result.group("TTTT").points is None
    assert "ONLINE_PAYMENT" in result.missing


# --- totals, rounding, completeness, grades -----------------------------------------------


def test_total_rounds_half_up_at_the_second_decimal() -> None:
    # Everything full (100) except PUBLIC_CONTENT_FULL (max 2) at 1/16:
    # 2 × 1/16 = 0.125, so 100 − 2 + 0.125 = 98.125 → 98.13 (half-up; half-even would say 98.12)
    counts = full_marks(V) | {"PUBLIC_CONTENT_FULL": Counts(1, 16)}
    result = score(V, counts)
    assert result.total == D("98.13")
    # The CKMB group: 6 + 4 + 0.125 + 6 = 16.125 → 16.13
    assert result.group("CKMB").points == D("16.13")


def test_total_is_rounded_once_from_unrounded_metric_points() -> None:
    # PUBLIC_UPDATE_ON_TIME 4 × 1/3 = 1.3333… and DOSSIER_SYNC 6 × 1/3 = 2 (exact);
    # FULL_ONLINE_RATE 12 × 1/7 = 1.714285…; the rest full:
    # 100 − 4 − 6 − 12 + 1.3333… + 2 + 1.714285… = 83.047619… → 83.05
    counts = full_marks(V) | {
        "PUBLIC_UPDATE_ON_TIME": Counts(1, 3),
        "DOSSIER_SYNC": Counts(1, 3),
        "FULL_ONLINE_RATE": Counts(1, 7),
    }
    result = score(V, counts)
    assert result.total == D("83.05")
    assert result.grade is not None and result.grade.name_vi == "Tốt"


def test_missing_metrics_are_missing_and_lower_completeness() -> None:
    # Only DOSSIER_SYNC (max 6) at 1/2 → 3 points; 6 of 100 points have data.
    result = score(V, {"DOSSIER_SYNC": Counts(1, 2)})
    assert result.total == D("3.00")
    assert result.completeness == D("0.06")
    assert result.grade is None  # a partial total has no grade
    assert result.metric("PUBLISH_ON_TIME").points is None
    assert result.group("CKMB").completeness == D(6) / D(18)
    assert result.group("MDSH").points is None
    assert len(result.missing) == 16  # 17 metrics, one with data


def test_nothing_submitted_has_no_total() -> None:
    result = score(V, {})
    assert (result.total, result.grade, result.completeness) == (None, None, 0)


@pytest.mark.parametrize(
    ("total", "grade"),
    [
        ("100", "Xuất sắc"),
        ("90.00", "Xuất sắc"),
        ("89.99", "Tốt"),
        ("80", "Tốt"),
        ("79.99", "Khá"),
        ("76", "Khá"),
        ("70.00", "Khá"),
        ("69.99", "Trung bình"),
        ("69.63", "Trung bình"),
        ("50", "Trung bình"),
        ("49.99", "Yếu"),
        ("0", "Yếu"),
    ],
)
def test_grade_bands_at_their_edges(total: str, grade: str) -> None:
    assert V.grade_for(D(total)).name_vi == grade


@pytest.mark.parametrize(
    ("on_time", "total", "grade"),
    [
        # CLGQ (12), ORIGINAL_RESULT_AVAILABLE (6) and DOSSIER_SYNC (6) at 0: 100 − 24 = 76,
        # then ON_TIME_RATE (20) decides. 20 × 2000/2000 = 20 → 76.00
        (Counts(2000, 2000), "76.00", "Khá"),
        # 20 × 1400/2000 = 14 → 76 − 20 + 14 = 70.00
        (Counts(1400, 2000), "70.00", "Khá"),
        # 20 × 1399/2000 = 13.99 → 69.99
        (Counts(1399, 2000), "69.99", "Trung bình"),
        # 20 × 2799/4000 = 13.995 → 69.995 → published 70.00, graded on the published total
        (Counts(2799, 4000), "70.00", "Khá"),
    ],
)
def test_grade_of_a_complete_score(on_time: Counts, total: str, grade: str) -> None:
    counts = full_marks(V) | {
        "FULL_ONLINE_RATE": Counts(0, 10),
        "ORIGINAL_RESULT_AVAILABLE": Counts(0, 10),
        "DOSSIER_SYNC": Counts(0, 10),
        "ON_TIME_RATE": on_time,
    }
    result = score(V, counts)
    assert result.complete
    assert result.total == D(total)
    assert result.grade is not None and result.grade.name_vi == grade


# --- periods: summed counts, precedence, version in force -----------------------------------


def test_a_quarter_is_scored_from_summed_counts_not_averaged_scores() -> None:
    april, may, june = Counts(9, 10), Counts(10, 100), Counts(50, 50)
    submitted = {
        (Period.parse("2024-04"), "FULL_ONLINE_RATE"): april,
        (Period.parse("2024-05"), "FULL_ONLINE_RATE"): may,
        (Period.parse("2024-06"), "FULL_ONLINE_RATE"): june,
    }
    quarter = resolve_period_counts(Period.parse("2024-Q2"), submitted)
    # 9 + 10 + 50 = 69 over 10 + 100 + 50 = 160
    assert quarter == {"FULL_ONLINE_RATE": Counts(69, 160)}
    # 12 × 69/160 = 828/160 = 5.175 → total 5.18 (half-up)
    assert score(V, quarter).total == D("5.18")
    # Monthly: 12 × 0.9 = 10.8, 12 × 0.1 = 1.2, 12 × 1 = 12; their average is 24/3 = 8.00
    monthly = [score(V, {"FULL_ONLINE_RATE": c}).total for c in (april, may, june)]
    assert monthly == [D("10.80"), D("1.20"), D("12.00")]
    assert score(V, quarter).total != D("8.00")


def test_a_direct_submission_wins_over_summed_parts() -> None:
    submitted = {
        (Period.parse("2024-Q2"), "DOSSIER_SYNC"): Counts(1, 4),
        (Period.parse("2024-04"), "DOSSIER_SYNC"): Counts(9, 10),
        (Period.parse("2024-05"), "DOSSIER_SYNC"): Counts(9, 10),
        (Period.parse("2024-04"), "DOSSIER_SYNC_OTHER"): Counts(1, 1),
        (Period.parse("2024-07"), "FULL_ONLINE_RATE"): Counts(1, 1),  # outside Q2
        (Period.parse("2024-01"), "PUBLISH_ON_TIME"): Counts(1, 2),
        (Period.parse("2024-Q2"), "PUBLISH_ON_TIME"): Counts(3, 4),
        (Period.parse("2024-Q3"), "PUBLISH_ON_TIME"): Counts(5, 6),
    }
    q2 = resolve_period_counts(Period.parse("2024-Q2"), submitted)
    assert q2 == {
        "DOSSIER_SYNC": Counts(1, 4),  # the quarter's own submission, not 18/20
        "DOSSIER_SYNC_OTHER": Counts(1, 1),  # one month only
        "PUBLISH_ON_TIME": Counts(3, 4),
    }
    year = resolve_period_counts(Period.parse("2024"), submitted)
    # Year = Q1 (from January: 1/2) + Q2 (direct 3/4) + Q3 (direct 5/6) = 9/12
    assert year["PUBLISH_ON_TIME"] == Counts(9, 12)
    # Year DOSSIER_SYNC = Q2 direct 1/4 (its months are not added again)
    assert year["DOSSIER_SYNC"] == Counts(1, 4)


def test_aggregate_sums_and_knows_nothing_is_nothing() -> None:
    assert aggregate([Counts(1, 2), Counts(3, 4)]) == Counts(4, 6)
    assert aggregate([]) is None


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        Counts(-1, 3)


def test_a_catalog_version_switch_changes_the_score_on_its_validity_date() -> None:
    catalog = switched_catalog(date(2024, 7, 1))  # threshold 0.90 → 0.80 from 1 July 2024
    counts = {"DOSSIER_RECEIVING_SATISFACTION": Counts(72, 100)}

    def total(period: str) -> Decimal | None:
        version = catalog.for_period(Period.parse(period))
        assert version is not None
        return score(version, counts).total

    # June, under 766-2022: 6 × 0.72 / 0.90 = 4.32 / 0.90 = 4.8
    assert total("2024-06") == D("4.80")
    # July, under the new version: 6 × 0.72 / 0.80 = 4.32 / 0.80 = 5.4
    assert total("2024-07") == D("5.40")
    assert total("2024-Q3") == D("5.40")
    assert total("2024-Q2") == D("4.80")


def test_a_period_uses_the_version_in_force_on_its_first_day() -> None:
    catalog = switched_catalog(date(2024, 5, 1))  # switch in the middle of Q2
    q2 = catalog.for_period(Period.parse("2024-Q2"))  # starts 1 April: old version
    may = catalog.for_period(Period.parse("2024-05"))
    year = catalog.for_period(Period.parse("2024"))
    assert (q2 and q2.version, may and may.version, year and year.version) == (
        "766-2022", "test-next", "766-2022",
    )  # fmt: skip


# --- properties ------------------------------------------------------------------------------

PLAIN = [m for _, m in V.metrics() if m.rule is not Rule.tttt_composite]
denominators = st.integers(min_value=0, max_value=10**9)


@st.composite
def two_numerators(draw: st.DrawFn) -> tuple[int, int, int]:
    denominator = draw(denominators)
    low = draw(st.integers(0, denominator))
    high = draw(st.integers(low, denominator))
    return low, high, denominator


@given(st.sampled_from(PLAIN), two_numerators())
def test_points_stay_within_zero_and_max_and_grow_with_the_numerator(
    metric: Metric, counts: tuple[int, int, int]
) -> None:
    low, high, denominator = counts
    low_points = points(metric.code, Counts(low, denominator))
    high_points = points(metric.code, Counts(high, denominator))
    assert low_points is not None and high_points is not None
    assert 0 <= low_points <= high_points <= metric.max_points


counts_strategy = st.integers(0, 10**6).flatmap(
    lambda d: st.builds(Counts, st.integers(0, d), st.just(d))
)


@given(st.dictionaries(st.sampled_from(V.counted_codes), counts_strategy))
def test_any_score_is_bounded_and_complete_only_with_every_code(
    counts: dict[str, Counts],
) -> None:
    result = score(V, counts)
    assert result.total is None or 0 <= result.total <= 100
    for group in result.groups:
        assert group.points is None or 0 <= group.points <= group.max_points
    assert result.complete == (set(counts) == set(V.counted_codes))
    assert (result.grade is not None) == result.complete


@given(st.lists(counts_strategy, min_size=1, max_size=3))
def test_a_quarter_submitted_directly_scores_like_its_summed_months(
    months: list[Counts],
) -> None:
    by_month = {
        (Period.parse(f"2024-0{4 + i}"), "FULL_ONLINE_RATE"): c for i, c in enumerate(months)
    }
    summed = aggregate(months)
    assert summed is not None
    direct = {(Period.parse("2024-Q2"), "FULL_ONLINE_RATE"): summed}
    q2 = Period.parse("2024-Q2")
    assert score(V, resolve_period_counts(q2, by_month)) == score(
        V, resolve_period_counts(q2, direct)
    )
