"""The indicator catalog as versioned data: groups, metrics, rules and grade bands per version.

Each version lives in ``app/indicators/catalog/<version>.yaml`` and is validated when the app
starts (the indicators router's lifespan loads it), so a malformed file stops the service instead
of skewing scores. The rules were reverse-engineered by outsiders and will change: a change is a
new file with its own validity period, never an edit of a version already used for scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from app.core.numbers import number, percent
from app.indicators.periods import Period, PeriodKind

CATALOG_DIR = Path(__file__).parent / "catalog"
TOTAL_POINTS = Decimal(100)

CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,47}$"
COMPONENT_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,47}\.[A-Z0-9_]{1,15}$"
# The official indicator number of the operator's description ("4.3"); see INDICATORS-766.
INDICATOR_PATTERN = r"^[1-9]\.[1-9][0-9]?$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


def _points(value: Decimal) -> float | None:
    return number(value)


def _percentage(fraction: Decimal) -> float | None:
    return number(percent(fraction))


# Figures of the catalog go out in the one number format of every score answer
# (app/core/numbers.py): points as JSON numbers, rates as percentages.
_POINTS_JSON = PlainSerializer(_points, return_type=float, when_used="json")
Points = Annotated[
    Decimal,
    Field(gt=0, le=TOTAL_POINTS),
    _POINTS_JSON,
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 100}),
]
PointsFrom = Annotated[
    Decimal,
    Field(ge=0, le=TOTAL_POINTS),
    _POINTS_JSON,
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100}),
]
# Held as a fraction (the data files state 0.9); published as the percentage (90).
FullMarksRate = Annotated[
    Decimal,
    Field(gt=0, le=1),
    PlainSerializer(_percentage, return_type=float, when_used="json"),
    WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": "The rate from which a `threshold` metric earns full points, as a "
            "percentage",
        }
    ),
]
Label = Annotated[str, Field(min_length=1, max_length=300)]
Indicator = Annotated[str, Field(pattern=INDICATOR_PATTERN, examples=["4.3"])]


class CatalogDataError(ValueError):
    """Catalog data that cannot be trusted: bad YAML, a bad field, sums that do not add up."""


class NoVersionInForce(LookupError):
    """No catalog version covers the date asked."""


class Rule(StrEnum):
    linear = "linear"  # max × rate
    threshold = "threshold"  # min(max, max × rate / threshold)
    tttt_composite = "tttt_composite"  # min(max, Σ min(cap_i, coefficient_i × rate_i))


class EmptyDenominator(StrEnum):
    """What a metric scores when its denominator is 0 (nothing to measure in the period)."""

    zero = "zero"
    full = "full"
    missing = "missing"  # nothing to measure: missing, as the portal shows N/A (no points)


class Source(StrEnum):
    """Where a metric's counts come from (docs/INDEX.md, "Sources and precedence")."""

    submitted = "submitted"  # units submit numerator and denominator
    records = "records"  # computed by chiso from dossier records; a unit's submission never scores
    # The numerator from records, part of the rest submitted (1.4's reporting-system total,
    # 5.4's complaint share).
    records_submitted = "records+submitted"


ALL_PERIOD_KINDS = (PeriodKind.month, PeriodKind.quarter, PeriodKind.year)


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Component(_Data):
    """One ratio of a composite metric, submitted under its own code (``ONLINE_PAYMENT.A``)."""

    code: Annotated[str, Field(pattern=COMPONENT_CODE_PATTERN)]
    # Required, null where the description has no such indicator: the data must say which.
    indicator: Indicator | None
    name_vi: Label
    name_en: Label
    numerator: Label
    denominator: Label
    coefficient: Points
    cap: Points | None = Field(default=None, description="The term is min(cap, coefficient × rate)")
    source: Source = Source.submitted
    empty_denominator: EmptyDenominator = EmptyDenominator.zero
    allow_numerator_above_denominator: bool = False

    @property
    def max_term(self) -> Decimal:
        return self.coefficient if self.cap is None else min(self.cap, self.coefficient)


class Metric(_Data):
    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    # Required, null where the description has no such indicator: the data must say which.
    indicator: Indicator | None
    name_vi: Label
    name_en: Label
    numerator: Label | None = None
    denominator: Label | None = None
    max_points: Points
    rule: Rule = Rule.linear
    threshold: FullMarksRate | None = None
    empty_denominator: EmptyDenominator | None = Field(
        default=None, description="Per component for a composite metric"
    )
    source: Source = Source.submitted
    allow_numerator_above_denominator: bool = False
    period_kinds: tuple[PeriodKind, ...] = ALL_PERIOD_KINDS
    components: tuple[Component, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _default_policy(cls, data: Any) -> Any:
        # A plain ratio scores 0 on an empty denominator unless the data says otherwise; a
        # composite states the policy per component, so it has none of its own.
        if isinstance(data, dict) and data.get("rule", Rule.linear) != Rule.tttt_composite:
            data.setdefault("empty_denominator", EmptyDenominator.zero)
        return data

    @model_validator(mode="after")
    def _rule_fields(self) -> Self:
        code = self.code
        if (self.rule is Rule.threshold) != (self.threshold is not None):
            raise ValueError(f"{code}: `threshold` is required by, and only by, rule threshold")
        if not self.period_kinds or len(set(self.period_kinds)) != len(self.period_kinds):
            raise ValueError(f"{code}: `period_kinds` must list month/quarter/year without repeats")
        if self.rule is not Rule.tttt_composite:
            if self.components:
                raise ValueError(f"{code}: only rule tttt_composite has components")
            if self.numerator is None or self.denominator is None:
                raise ValueError(f"{code}: describe the `numerator` and the `denominator`")
            return self
        if not self.components:
            raise ValueError(f"{code}: rule tttt_composite needs components")
        if self.empty_denominator is not None or self.allow_numerator_above_denominator:
            raise ValueError(
                f"{code}: a composite sets `empty_denominator` and "
                "`allow_numerator_above_denominator` per component"
            )
        parts = {c.source for c in self.components}
        stated = (
            next(iter(parts))
            if len(parts) == 1 and Source.records_submitted not in parts
            else Source.records_submitted
        )
        if self.source is not stated:
            raise ValueError(
                f"{code}: a composite's `source` sums up its components': {stated.value}"
            )
        for component in self.components:
            if not component.code.startswith(f"{code}."):
                raise ValueError(f"{code}: component {component.code} must start with {code}.")
        reachable = sum((c.max_term for c in self.components), Decimal(0))
        if reachable < self.max_points:
            raise ValueError(
                f"{code}: full components reach {reachable}, less than max_points {self.max_points}"
            )
        return self

    @property
    def counted_codes(self) -> tuple[str, ...]:
        """The codes under which counts are submitted and passed to the scoring engine."""
        return tuple(c.code for c in self.components) if self.components else (self.code,)


class Group(_Data):
    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    name_vi: Label
    name_en: Label
    max_points: Points
    metrics: Annotated[tuple[Metric, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _metrics_add_up(self) -> Self:
        total = sum((m.max_points for m in self.metrics), Decimal(0))
        if total != self.max_points:
            raise ValueError(
                f"group {self.code}: metrics add up to {total}, not max_points {self.max_points}"
            )
        return self


class GradeBand(_Data):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,31}$")]
    name_vi: Label
    name_en: Label
    min_points: PointsFrom


class Measure(NamedTuple):
    """What a submitted code measures: a metric, or one component of a composite metric."""

    group: Group
    metric: Metric
    component: Component | None

    @property
    def allow_numerator_above_denominator(self) -> bool:
        if self.component is not None:
            return self.component.allow_numerator_above_denominator
        return self.metric.allow_numerator_above_denominator


class CatalogVersion(_Data):
    """One version of the catalog, in force from ``valid_from`` to ``valid_to`` (inclusive)."""

    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    title: Label
    reference: Label
    valid_from: date
    valid_to: date | None = None
    grade_bands: Annotated[tuple[GradeBand, ...], Field(min_length=1)]
    groups: Annotated[tuple[Group, ...], Field(min_length=1)]

    _measures: dict[str, Measure] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        total = sum((g.max_points for g in self.groups), Decimal(0))
        if total != TOTAL_POINTS:
            raise ValueError(f"groups add up to {total} points, not {TOTAL_POINTS}")
        codes = [g.code for g in self.groups]
        for group in self.groups:
            for metric in group.metrics:
                codes.append(metric.code)
                codes.extend(c.code for c in metric.components)
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError("codes used more than once: " + ", ".join(repeated))
        self._check_bands()
        return self

    def _check_bands(self) -> None:
        bands = self.grade_bands
        if any(a.min_points <= b.min_points for a, b in pairwise(bands)):
            raise ValueError("grade_bands must be listed from best to worst, min_points decreasing")
        if bands[-1].min_points != 0:
            raise ValueError("the last grade band must start at 0 so that every total has a grade")
        if len({b.code for b in bands}) != len(bands):
            raise ValueError("grade band codes must be unique")

    def model_post_init(self, context: Any, /) -> None:
        self._measures = {
            code: Measure(group, metric, component)
            for group in self.groups
            for metric in group.metrics
            for component, code in (
                zip(metric.components, metric.counted_codes, strict=True)
                if metric.components
                else ((None, metric.code),)
            )
        }

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def metrics(self) -> Iterator[tuple[Group, Metric]]:
        for group in self.groups:
            for metric in group.metrics:
                yield group, metric

    def measure(self, code: str) -> Measure | None:
        """The metric (and component) a submitted code stands for; None when unknown here."""
        return self._measures.get(code)

    @property
    def counted_codes(self) -> tuple[str, ...]:
        """Every code counts are kept under, in catalog order."""
        return tuple(self._measures)

    def grade_for(self, points: Decimal) -> GradeBand:
        """The band of a published (two-decimal) total: the first whose minimum it reaches."""
        for band in self.grade_bands:
            if points >= band.min_points:
                return band
        return self.grade_bands[-1]


class Catalog(BaseModel):
    """All versions; no two are in force on the same day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    versions: Annotated[tuple[CatalogVersion, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _no_overlap(self) -> Self:
        ordered = sorted(self.versions, key=lambda v: v.valid_from)
        ids = [v.version for v in ordered]
        if len(set(ids)) != len(ids):
            raise ValueError("catalog version ids must be unique")
        for earlier, later in pairwise(ordered):
            if earlier.valid_to is None or earlier.valid_to >= later.valid_from:
                raise ValueError(
                    f"versions {earlier.version} and {later.version} overlap: "
                    f"{earlier.version} must end before {later.valid_from.isoformat()}"
                )
        return self

    def in_force(self, day: date) -> CatalogVersion | None:
        return next((v for v in self.versions if v.in_force(day)), None)

    def for_period(self, period: Period) -> CatalogVersion | None:
        """A period is scored with the version in force on its first day."""
        return self.in_force(period.first_day)

    def version(self, version_id: str) -> CatalogVersion | None:
        return next((v for v in self.versions if v.version == version_id), None)


def parse_catalog_version(text: str, source: str = "<string>") -> CatalogVersion:
    """Validate one version document; any defect raises CatalogDataError naming ``source``."""
    try:
        document = yaml.safe_load(text)
        return CatalogVersion.model_validate(document)
    except yaml.YAMLError as exc:
        raise CatalogDataError(f"{source}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise CatalogDataError(f"{source}: invalid indicator catalog:\n{exc}") from exc


def build_catalog(versions: Sequence[CatalogVersion], source: str = "<catalog>") -> Catalog:
    """Versions ordered by validity, checked together (ids unique, no overlap)."""
    try:
        return Catalog(versions=tuple(sorted(versions, key=lambda v: v.valid_from)))
    except ValidationError as exc:
        raise CatalogDataError(f"{source}: inconsistent catalog versions:\n{exc}") from exc


def load_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    """Every ``*.yaml`` in ``directory``, one version per file, checked together."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogDataError(f"{directory}: no catalog version (*.yaml) found")
    versions = [parse_catalog_version(f.read_text(encoding="utf-8"), str(f)) for f in files]
    for path, version in zip(files, versions, strict=True):
        if path.stem != version.version:
            raise CatalogDataError(f"{path}: file name must be the version id {version.version!r}")
    return build_catalog(versions, str(directory))


@cache
def shipped_catalog() -> Catalog:
    """The catalog shipped with the service (read once; the models are immutable)."""
    return load_catalog(CATALOG_DIR)


def catalog_in_force(at: date, catalog: Catalog | None = None) -> CatalogVersion:
    """The version in force on ``at`` (of the shipped catalog unless one is given)."""
    version = (catalog or shipped_catalog()).in_force(at)
    if version is None:
        raise NoVersionInForce(f"no indicator catalog version is in force on {at.isoformat()}")
    return version
