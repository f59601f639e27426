"""A catalog version as columns, the parameters of the set-based scoring statement
(:func:`app.scores.repository.score_units`), and the per-unit reference it must agree with.

The statement scores every unit of a period at once in PostgreSQL ``numeric`` (50 decimals, so
every figure is the exact value to far beyond the two published decimals). The reference,
:func:`reference_unit`, is the per-unit ``Decimal`` path (:func:`app.indicators.scoring.score`)
with the record-based rules of :mod:`app.scores.records`: the statement hands a unit back to it
in the one case where ``numeric`` and ``Decimal`` could round differently (a sum lying within
1e-20 of a half-cent, where ``Decimal``'s 28-digit sums may fall on either side), so the stored
figures are today's exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from app.indicators.catalog import CatalogVersion, Rule, Source
from app.indicators.scoring import Counts, Score, score
from app.scores.records import ON_TIME, RecordCounts, counts_from_records, record_fed_codes

# How a counted code's scored counts are found (the statement's ``kind``).
SUBMITTED, ON_TIME_KIND, RECORDS, RECORDS_SUBMITTED = (
    "submitted",
    "on_time",
    "records",
    "records_submitted",
)


def _json_number(value: Any) -> str:
    """A catalog figure as the snapshots hold it (a float, ``6.0``), as JSON text."""
    return orjson.dumps(float(value)).decode()


def version_columns(version: CatalogVersion) -> dict[str, Any]:
    """The version's metrics, counted codes and grade bands, one array per column (and the
    points of all groups, ``total_max``)."""
    record_fed = set(record_fed_codes(version))
    names = (
        "m_code", "m_group", "m_ord", "m_max", "m_max_json", "m_composite",
        "c_code", "c_metric", "c_ord", "c_component", "c_max", "c_threshold", "c_cap",
        "c_empty", "c_kind", "b_name", "b_min",
    )  # fmt: skip
    columns: dict[str, Any] = {name: [] for name in names}
    m_ord = 0
    for group in version.groups:
        for metric in group.metrics:
            m_ord += 1
            columns["m_code"].append(metric.code)
            columns["m_group"].append(group.code)
            columns["m_ord"].append(m_ord)
            columns["m_max"].append(metric.max_points)
            columns["m_max_json"].append(_json_number(metric.max_points))
            columns["m_composite"].append(metric.rule is Rule.tttt_composite)
            parts = metric.components or (None,)
            for c_ord, component in enumerate(parts):
                code = component.code if component is not None else metric.code
                part = component or metric
                if code == ON_TIME:
                    kind = ON_TIME_KIND
                elif code in record_fed:
                    kind = RECORDS if part.source is Source.records else RECORDS_SUBMITTED
                else:
                    kind = SUBMITTED
                columns["c_code"].append(code)
                columns["c_metric"].append(metric.code)
                columns["c_ord"].append(c_ord)
                columns["c_component"].append(component is not None)
                columns["c_max"].append(component.coefficient if component else metric.max_points)
                columns["c_threshold"].append(
                    metric.threshold
                    if component is None and metric.rule is Rule.threshold
                    else None
                )
                columns["c_cap"].append(component.cap if component is not None else None)
                columns["c_empty"].append(str(part.empty_denominator.value))  # type: ignore[union-attr]
                columns["c_kind"].append(kind)
    columns["total_max"] = sum((g.max_points for g in version.groups), Decimal(0))
    for band in version.grade_bands:
        columns["b_name"].append(band.name_vi)
        columns["b_min"].append(band.min_points)
    return columns


def _source(version: CatalogVersion, code: str) -> Source:
    measure = version.measure(code)
    assert measure is not None
    return (measure.component or measure.metric).source


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record-fed code's scored counts came from, and both candidates."""

    scored_from: str  # records | admin (an admin-scope submission overrides)
    computed: Counts | None
    submitted: Counts | None  # the latest submission (any scope), shown; scores only as admin's
    admin: Counts | None


def reference_unit(
    version: CatalogVersion,
    own: Mapping[str, Counts],
    by_admin: Mapping[str, Counts],
    on_time: Counts | None,
    records: RecordCounts | None,
) -> tuple[Score, dict[str, Provenance]]:
    """One unit's score and provenance the per-unit way (``Decimal``): its own latest
    submissions, the admin-scope ones, 2.1's counts and its record counts (None: no row). For a
    record-fed metric the computed counts score unless an admin-scope submission overrides
    them; a unit's own submission is kept (and shown) but does not score."""
    record_fed = record_fed_codes(version)
    overridable = {code for code in record_fed if _source(version, code) is Source.records}
    counts: dict[str, Counts | None] = dict(own)
    if on_time is not None:
        counts[ON_TIME] = on_time
    # The submitted parts of records+submitted metrics (1.4's reporting total, 5.4's
    # complaint share): the admin's value if there is one, else the unit's latest.
    parts = {**own, **by_admin} if record_fed else {}
    computed = counts_from_records(record_fed, records, parts, on_time) if record_fed else {}
    provenance: dict[str, Provenance] = {}
    for code, value in computed.items():
        override = by_admin.get(code) if code in overridable else None
        counts[code] = override if override is not None else value
        provenance[code] = Provenance(
            scored_from="admin" if override is not None else "records",
            computed=value,
            submitted=parts.get(code) if code not in overridable else own.get(code),
            admin=override,
        )
    return score(version, counts), provenance


def record_columns(rows: Sequence[Any], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows of per-unit counts as one array per column."""
    return {name: [getattr(r, name) for r in rows] for name in names}
