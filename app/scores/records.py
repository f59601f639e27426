"""The record-based metrics' counts from what the records show (pure: the counts come from
:func:`app.scores.repository.record_columns`, kept by the database as dossiers are written).

For each metric whose source is ``records`` or ``records+submitted`` in the catalog version,
the counts come from the unit subtree's dossiers received in the period; the submitted parts
(1.4's reporting-system total, 5.4's complaint share) come from the latest submissions. The rules
follow the portal operator's description; docs/INDEX.md, "Computed from the records", states
them one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.indicators.catalog import CatalogVersion, Source
from app.indicators.scoring import Counts


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """Dossiers of one unit subtree received in one period (not withdrawn before acceptance),
    and how many of them meet each rule."""

    received: int = 0
    online: int = 0  # KenhThucHien 2, with an electronic result where a paper one is due
    charged: int = 0  # of procedures with fees, less those whose every fee is 0
    paid_online: int = 0  # … of them, DuocThanhToanTrucTuyen 1 or 2
    paper_result: int = 0  # of procedures that must return a paper result
    electronic_result: int = 0  # … of them, with a result file synced
    digitised: int = 0  # a paper with a file, and the electronic result where one is due
    reused: int = 0  # HoSoCoThanhPhanSoHoa (or a digitised paper)
    linked_to_store: int = 0  # a paper from the citizen's store, or a result synced to it
    population_data: int = 0  # VNeID, a paper from the store, or the population database


ON_TIME = "ON_TIME_RATE"
SYNC = "DOSSIER_SYNC"
RECEIVING_SATISFACTION = "DOSSIER_RECEIVING_SATISFACTION"


def _reported(r: RecordCounts, submitted: Mapping[str, Counts]) -> int:
    """1.4's denominator: the larger of the dossiers synced and the reporting system's total
    (the denominator of a submitted DOSSIER_SYNC); without that total, the dossiers synced."""
    total = submitted.get(SYNC)
    return max(r.received, total.denominator if total is not None else 0)


def _receiving_satisfaction(
    _: RecordCounts, submitted: Mapping[str, Counts], on_time: Counts | None
) -> Counts | None:
    """5.4 = 1 − late share (2.1's late ÷ its denominator) − complaint share (submitted:
    dossiers with a complaint or a dislike ÷ dossiers). As one exact fraction over the product
    of the two denominators, never below 0. Missing without the submitted share (leaving it
    out would reward not submitting it)."""
    complaints = submitted.get(RECEIVING_SATISFACTION)
    if complaints is None:
        return None
    timely = on_time or Counts(0, 0)
    late, dossiers = timely.denominator - timely.numerator, timely.denominator
    if dossiers == 0 or complaints.denominator == 0:  # a share of nothing is 0
        base = dossiers or complaints.denominator
        lost = (late if dossiers else 0) + (complaints.numerator if complaints.denominator else 0)
        return Counts(max(0, base - lost), base)
    base = dossiers * complaints.denominator
    lost = late * complaints.denominator + complaints.numerator * dossiers
    return Counts(max(0, base - lost), base)


_Rule = Callable[[RecordCounts, Mapping[str, Counts], Counts | None], Counts | None]

# Metric code → its counts. Keyed by code (two metrics share indicator 4.5).
RULES: dict[str, _Rule] = {
    SYNC: lambda r, s, _: Counts(r.received, _reported(r, s)),
    # 3.3 × the sync rate (1.4): online/received × received/reported = online/reported.
    "FULL_ONLINE_RATE": lambda r, s, _: Counts(r.online, _reported(r, s)),
    "ONLINE_PAYMENT.A": lambda r, s, _: Counts(r.paid_online, r.charged),
    "ORIGINAL_RESULT_AVAILABLE": lambda r, s, _: Counts(r.electronic_result, r.paper_result),
    "SO_HOA_GIAY_TO_GIAI_QUYET": lambda r, s, _: Counts(r.digitised, r.received),
    "REUSED_DIGITIZED_DATA": lambda r, s, _: Counts(r.reused, r.received),
    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": lambda r, s, _: Counts(r.linked_to_store, r.received),
    "CITIZEN_DATA_CONNECTED_DOSSIER": lambda r, s, _: Counts(r.population_data, r.received),
    RECEIVING_SATISFACTION: _receiving_satisfaction,
}

RECORD_SOURCES = (Source.records, Source.records_submitted)


def record_fed_codes(version: CatalogVersion) -> tuple[str, ...]:
    """The counted codes of ``version`` that records feed (2.1 has its own computation)."""
    codes = []
    for code in version.counted_codes:
        measure = version.measure(code)
        assert measure is not None
        part = measure.component or measure.metric
        if code != ON_TIME and part.source in RECORD_SOURCES:
            if code not in RULES:
                raise LookupError(f"{version.version}: no record-based rule for {code}")
            codes.append(code)
    return tuple(codes)


def counts_from_records(
    codes: tuple[str, ...],
    records: RecordCounts | None,
    submitted: Mapping[str, Counts],
    on_time: Counts | None,
) -> dict[str, Counts | None]:
    """Counts of each record-fed code for one unit and period (None: missing). A unit
    subtree without a dossier in the period has 0 of everything."""
    found = records or RecordCounts()
    return {code: RULES[code](found, submitted, on_time) for code in codes}
