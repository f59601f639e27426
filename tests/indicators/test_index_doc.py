"""docs/INDEX.md's table of every metric stays in step with the shipped catalog."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from app.indicators.catalog import (
    CatalogVersion,
    Component,
    EmptyDenominator,
    Metric,
    Rule,
    shipped_catalog,
)
from app.scores.records import RULES, record_fed_codes

INDEX = Path(__file__).parents[2] / "docs" / "INDEX.md"
HEADER = "| code | indicator | source | numerator | denominator | max | rule |"


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _rule(metric: Metric) -> str:
    if metric.rule is Rule.tttt_composite:
        return f"composite: min({metric.max_points}, sum of the terms below)"
    text = "linear" if metric.rule is Rule.linear else "full points from "
    if metric.threshold is not None:
        text += _percent(metric.threshold)
    if metric.empty_denominator is EmptyDenominator.full:
        text += "; nothing to measure: full points"
    if metric.empty_denominator is EmptyDenominator.missing:
        text += "; nothing to measure: missing"
    return text


def _term(component: Component) -> str:
    term = f"{component.coefficient} × rate"
    term = term if component.cap is None else f"min({component.cap}, {term})"
    if component.empty_denominator is EmptyDenominator.missing:
        term += "; nothing to measure: missing"
    return term


def rows(version: CatalogVersion) -> list[str]:
    """The table's rows for one version, as docs/INDEX.md must show them."""
    lines = [HEADER, "|---|---|---|---|---|---|---|"]
    for _, metric in version.metrics():
        lines.append(
            f"| {metric.code} | {metric.indicator or '–'} | {metric.source} | "
            f"{metric.numerator or '–'} | {metric.denominator or '–'} | {metric.max_points} | "
            f"{_rule(metric)} |"
        )
        lines += [
            f"| {c.code} | {c.indicator or '–'} | {c.source} | {c.numerator} | "
            f"{c.denominator} | {c.max_term} | term {_term(c)} |"
            for c in metric.components
        ]
    return lines


def documented(version_id: str) -> list[str]:
    """The table under the heading ``### Metrics of <version>`` in docs/INDEX.md."""
    text = INDEX.read_text(encoding="utf-8").splitlines()
    start = text.index(f"### Metrics of {version_id}")
    table = [line for line in text[start + 1 :] if line.strip()]
    end = next((i for i, line in enumerate(table) if not line.startswith("|")), len(table))
    return table[:end]


def test_every_shipped_version_has_its_table_of_metrics() -> None:
    for version in shipped_catalog().versions:
        assert documented(version.version) == rows(version), (
            f"docs/INDEX.md's table for {version.version} differs from the catalog; print "
            "tests.indicators.test_index_doc.rows(version) and paste it"
        )


def test_every_record_fed_metric_has_a_rule() -> None:
    fed = {code for v in shipped_catalog().versions for code in record_fed_codes(v)}
    assert fed == set(RULES)
