"""The catalog is data: the shipped version loads, sums add up, and broken data is refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.indicators.catalog import (
    CatalogDataError,
    EmptyDenominator,
    NoVersionInForce,
    Rule,
    Source,
    catalog_in_force,
    load_catalog,
    parse_catalog_version,
    shipped_catalog,
)
from tests.indicators import metric_entry, shipped_document, switched_catalog


def _parse(document: dict[str, Any]) -> None:
    parse_catalog_version(yaml.safe_dump(document, allow_unicode=True), "test.yaml")


def test_shipped_version_has_the_six_groups_of_decision_766() -> None:
    version = catalog_in_force(date(2024, 4, 1))
    assert version.version == "766-2022"
    assert (version.valid_from, version.valid_to) == (date(2022, 1, 1), date(2026, 11, 30))
    assert {g.code: g.max_points for g in version.groups} == {
        "CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDHL": 18, "MDSH": 22,
    }  # fmt: skip
    mdsh = next(g for g in version.groups if g.code == "MDSH")
    assert {m.code: m.max_points for m in mdsh.metrics} == {
        "ORIGINAL_RESULT_AVAILABLE": 6, "SO_HOA_GIAY_TO_GIAI_QUYET": 4,
        "ELECTRONIC_CERTIFIED_COPY": 2, "REUSED_DIGITIZED_DATA": 2,
        "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": 4, "CITIZEN_DATA_CONNECTED_DOSSIER": 2,
        "CITIZEN_DATA_CONNECTED_FORMALITY": 2,
    }  # fmt: skip


def test_shipped_rules_are_the_observed_ones() -> None:
    version = catalog_in_force(date(2024, 4, 1))
    on_time = version.measure("ON_TIME_RATE")
    assert on_time is not None and on_time.metric.source is Source.records
    receiving = version.measure("DOSSIER_RECEIVING_SATISFACTION")
    assert receiving is not None
    assert (receiving.metric.rule, receiving.metric.threshold) == (Rule.threshold, Decimal("0.9"))
    reused = version.measure("REUSED_DIGITIZED_DATA")
    assert reused is not None and reused.metric.threshold == Decimal("0.8")
    petitions = version.measure("PETITION_HANDLING_SATISFACTION")
    assert petitions is not None and petitions.metric.empty_denominator is EmptyDenominator.full
    sync = version.measure("DOSSIER_SYNC")
    assert sync is not None and sync.metric.empty_denominator is EmptyDenominator.zero
    payment = version.measure("ONLINE_PAYMENT.B")
    assert payment is not None and payment.metric.rule is Rule.tttt_composite
    assert [(c.code, c.coefficient, c.cap) for c in payment.metric.components] == [
        ("ONLINE_PAYMENT.A", 6, None),
        ("ONLINE_PAYMENT.B", Decimal("2.5"), 2),
        ("ONLINE_PAYMENT.C", Decimal("2.5"), None),
    ]
    assert version.measure("ONLINE_PAYMENT") is None  # scored from components, not submitted


def test_every_metric_names_its_official_indicator() -> None:
    version = catalog_in_force(date(2024, 4, 1))
    named = {
        code: (m.component or m.metric).indicator
        for code in version.counted_codes
        if (m := version.measure(code)) is not None
    }
    assert named == {
        "PUBLISH_ON_TIME": "1.1", "PUBLIC_UPDATE_ON_TIME": "1.2", "PUBLIC_CONTENT_FULL": "1.3",
        "DOSSIER_SYNC": "1.4", "ON_TIME_RATE": "2.1", "FULL_ONLINE_RATE": "3.3",
        "ONLINE_PAYMENT.A": "3.6", "ONLINE_PAYMENT.B": None, "ONLINE_PAYMENT.C": "3.5",
        "PETITION_PROCESSING_ON_TIME": "5.2", "PETITION_HANDLING_SATISFACTION": "5.3",
        "DOSSIER_RECEIVING_SATISFACTION": "5.4", "ORIGINAL_RESULT_AVAILABLE": "4.1",
        "SO_HOA_GIAY_TO_GIAI_QUYET": "4.2", "ELECTRONIC_CERTIFIED_COPY": None,
        "REUSED_DIGITIZED_DATA": "4.3", "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": "4.4",
        "CITIZEN_DATA_CONNECTED_DOSSIER": "4.5", "CITIZEN_DATA_CONNECTED_FORMALITY": "4.5",
    }  # fmt: skip
    payment = version.measure("ONLINE_PAYMENT.A")
    assert payment is not None and payment.metric.indicator is None  # a group, not an indicator


def test_766_2026_takes_the_operators_thresholds_and_the_record_sources() -> None:
    old, new = catalog_in_force(date(2026, 11, 30)), catalog_in_force(date(2026, 12, 1))
    assert (old.version, new.version) == ("766-2022", "766-2026")

    def rules(version: Any) -> dict[str, tuple[str, Decimal | None, str]]:
        return {
            m.code: (m.rule.value, m.threshold, m.source.value)
            for _, m in version.metrics()
            if m.code in ("FULL_ONLINE_RATE", "SO_HOA_GIAY_TO_GIAI_QUYET",
                          "REUSED_DIGITIZED_DATA", "DOSSIER_RECEIVING_SATISFACTION")
        }  # fmt: skip

    assert rules(old) == {
        "FULL_ONLINE_RATE": ("linear", None, "submitted"),
        "SO_HOA_GIAY_TO_GIAI_QUYET": ("linear", None, "submitted"),
        "REUSED_DIGITIZED_DATA": ("threshold", Decimal("0.8"), "submitted"),
        "DOSSIER_RECEIVING_SATISFACTION": ("threshold", Decimal("0.9"), "submitted"),
    }
    assert rules(new) == {  # 3.3 from 50%, 4.2 and 4.3 from 80%, 5.4 from 90%
        "FULL_ONLINE_RATE": ("threshold", Decimal("0.5"), "records"),
        "SO_HOA_GIAY_TO_GIAI_QUYET": ("threshold", Decimal("0.8"), "records"),
        "REUSED_DIGITIZED_DATA": ("threshold", Decimal("0.8"), "records"),
        "DOSSIER_RECEIVING_SATISFACTION": ("threshold", Decimal("0.9"), "records+submitted"),
    }
    # Points per metric and group are the same in both versions (ranks stay comparable).
    assert {m.code: m.max_points for _, m in old.metrics()} == {
        m.code: m.max_points for _, m in new.metrics()
    }
    payment = new.measure("ONLINE_PAYMENT.A")
    assert payment is not None and payment.metric.source.value == "records+submitted"
    assert [c.source.value for c in payment.metric.components] == [
        "records", "submitted", "submitted",
    ]  # fmt: skip


def test_no_version_before_the_first_one() -> None:
    with pytest.raises(NoVersionInForce, match="2021-12-31"):
        catalog_in_force(date(2021, 12, 31))


def test_a_version_switch_takes_effect_on_its_validity_date() -> None:
    catalog = switched_catalog(date(2024, 7, 1))
    assert catalog_in_force(date(2024, 6, 30), catalog).version == "766-2022"
    assert catalog_in_force(date(2024, 7, 1), catalog).version == "test-next"
    assert catalog_in_force(date(2030, 1, 1), catalog).version == "test-next"


def test_several_versions_load_from_a_directory(tmp_path: Path) -> None:
    old = shipped_document()
    old["valid_to"] = date(2025, 6, 30)
    new = shipped_document()
    new.update(version="2025-07", valid_from=date(2025, 7, 1))
    for document in (old, new):
        path = tmp_path / f"{document['version']}.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    catalog = load_catalog(tmp_path)
    assert [v.version for v in catalog.versions] == ["766-2022", "2025-07"]
    assert catalog_in_force(date(2025, 7, 1), catalog).version == "2025-07"


def test_overlapping_versions_are_refused(tmp_path: Path) -> None:
    new = shipped_document()
    new.update(version="2025-07", valid_from=date(2025, 7, 1))
    for document in (shipped_document(), new):  # the shipped one is open-ended
        path = tmp_path / f"{document['version']}.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogDataError, match="overlap"):
        load_catalog(tmp_path)


def test_file_name_must_be_the_version_id(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(shipped_document()), encoding="utf-8")
    with pytest.raises(CatalogDataError, match="file name"):
        load_catalog(tmp_path)


def _group_sum_wrong(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["max_points"] = 5


def _total_wrong(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["max_points"] = 7
    d["groups"][0]["max_points"] = 19


def _threshold_missing(d: dict[str, Any]) -> None:
    del metric_entry(d, "DOSSIER_RECEIVING_SATISFACTION")["threshold"]


def _threshold_on_linear(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["threshold"] = 0.5


def _threshold_above_one(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_RECEIVING_SATISFACTION")["threshold"] = 1.5


def _repeated_code(d: dict[str, Any]) -> None:
    metric_entry(d, "PUBLIC_CONTENT_FULL")["code"] = "PUBLISH_ON_TIME"


def _bands_unordered(d: dict[str, Any]) -> None:
    d["grade_bands"][0]["min_points"] = 75


def _no_floor_band(d: dict[str, Any]) -> None:
    d["grade_bands"][-1]["min_points"] = 10


def _unknown_rule(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["rule"] = "exponential"


def _unknown_field(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["weight"] = 2


def _component_prefix(d: dict[str, Any]) -> None:
    metric_entry(d, "ONLINE_PAYMENT")["components"][0]["code"] = "PAYMENT.A"


def _composite_unreachable(d: dict[str, Any]) -> None:
    metric_entry(d, "ONLINE_PAYMENT")["components"][0]["coefficient"] = 5  # 5 + 2 + 2.5 < 10


def _indicator_unstated(d: dict[str, Any]) -> None:
    del metric_entry(d, "DOSSIER_SYNC")["indicator"]  # null is fine; silence is not


def _indicator_malformed(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["indicator"] = "1-4"


def _source_unknown(d: dict[str, Any]) -> None:
    metric_entry(d, "DOSSIER_SYNC")["source"] = "dossiers"  # the name before records


def _validity_reversed(d: dict[str, Any]) -> None:
    d["valid_to"] = date(2021, 1, 1)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_group_sum_wrong, "group CKMB: metrics add up to 17, not max_points 18"),
        (_total_wrong, "groups add up to 101 points, not 100"),
        (_threshold_missing, "`threshold` is required by, and only by, rule threshold"),
        (_threshold_on_linear, "`threshold` is required by, and only by, rule threshold"),
        (_threshold_above_one, "less than or equal to 1"),
        (_repeated_code, "codes used more than once: PUBLISH_ON_TIME"),
        (_bands_unordered, "from best to worst"),
        (_no_floor_band, "last grade band must start at 0"),
        (_unknown_rule, "rule"),
        (_unknown_field, "weight"),
        (_component_prefix, "must start with ONLINE_PAYMENT."),
        (_composite_unreachable, "full components reach 9.5"),
        (_validity_reversed, "valid_to must not be before valid_from"),
        (_indicator_unstated, "indicator\n  Field required"),
        (_indicator_malformed, "String should match pattern"),
        (_source_unknown, "input_value='dossiers'"),
    ],
)
def test_broken_catalog_data_is_refused(breakage: Any, message: str) -> None:
    document = shipped_document()
    breakage(document)
    with pytest.raises(CatalogDataError, match=r"test\.yaml") as caught:
        _parse(document)
    assert message in str(caught.value)


def test_not_yaml_is_refused() -> None:
    with pytest.raises(CatalogDataError, match="not valid YAML"):
        parse_catalog_version("groups: [unclosed", "test.yaml")


def test_shipped_catalog_is_read_once() -> None:
    assert shipped_catalog() is shipped_catalog()
