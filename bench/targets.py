"""The targets of the hot path, in one place: the scenarios set them on their figures and the
report judges every result against them (older results too, so a target changed here is
applied to every run the docs table shows).

A target names the scenario and the figure (``Figure.key``) that answers it. A scenario that
measures with several API process counts answers it once per count; the report shows a row per
count. A scenario builds its figure with :func:`figure`, which sets the key and the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.model import Figure


@dataclass(frozen=True)
class Target:
    key: str
    scenario: str
    label: str
    ratio: float | None = None  # vs the same-run baseline: a minimum, or a maximum if lower wins
    value: float | None = None  # an absolute minimum, in ``unit`` (the figure's)
    unit: str = ""
    higher_is_better: bool = True
    size: str = ""  # how much is measured, from the scale (``Scale``'s fields)
    legacy_names: tuple[str, ...] = ()  # figure names in results written before keys existed

    @property
    def text(self) -> str:
        parts = []
        if self.ratio is not None:
            parts.append(f"{'≥' if self.higher_is_better else '≤'} {self.ratio:g} ×")
        if self.value is not None:
            parts.append(f"≥ {self.value:,.0f} {self.unit}".rstrip())
        return " and ".join(parts)

    def met(self, value: float | None, baseline: float | None) -> bool | None:
        checks = []
        if self.ratio is not None:
            if value is None or not baseline:
                return None
            ratio = value / baseline
            checks.append(ratio >= self.ratio if self.higher_is_better else ratio <= self.ratio)
        if self.value is not None:
            if value is None:
                return None
            checks.append(value >= self.value)
        return all(checks) if checks else None


# Report order. Ratios are against baselines measured in the same run, interleaved.
TARGETS: dict[str, Target] = {
    t.key: t
    for t in (
        Target(
            "single_post",
            "single_post",
            "Single-event POST vs bare one-row insert",
            ratio=0.5,
            legacy_names=("throughput",),
        ),
        Target(
            "batch_copy",
            "batch",
            "Batch ingestion vs asyncpg COPY",
            ratio=0.25,
            legacy_names=("events/s vs COPY",),
        ),
        Target(
            "batch_absolute",
            "batch",
            "Batch ingestion, events/s",
            value=50_000,
            unit="events/s",
            legacy_names=("events/s (absolute)",),
        ),
        Target(
            "portal_push",
            "portal_push",
            "Portal records (/dvcqg) vs COPY of the rows they produce",
            ratio=0.2,
        ),
        Target(
            "recompute",
            "recompute",
            "Recomputation, record-based metrics included, vs one GROUP BY",
            ratio=3.0,
            higher_is_better=False,
            size="{month_dossiers:,} dossiers a month",
            # No legacy name: older runs scored the month without the record-based metrics.
        ),
        Target(
            "sync_rss",
            "portal_sync",
            "Worker RSS, highest over the sync vs after 1 % of it",
            ratio=1.5,
            higher_is_better=False,
            size="{sync_dossiers:,} dossiers",
            legacy_names=("worker RSS, highest vs after",),
        ),
        Target(
            "rankings_200",
            "rankings",
            "Rankings 200 vs constant endpoint",
            ratio=1.0,
            legacy_names=("200 throughput",),
        ),
        Target(
            "rankings_304",
            "rankings",
            "Rankings 304 vs constant endpoint",
            ratio=1.0,
            legacy_names=("304 throughput",),
        ),
        Target(
            "burst",
            "batch",
            "Burst ingested and fully derived",
            value=20_000,
            unit="events/s",
            size="{batch_events:,} events",
            legacy_names=("ingest then derive",),
        ),
    )
}


def figure(key: str, name: str, unit: str, value: float | None, **fields: Any) -> Figure:
    """A figure answering target ``key``, with the target's thresholds."""
    target = TARGETS[key]
    return Figure(
        name,
        unit,
        value,
        key=key,
        higher_is_better=target.higher_is_better,
        target_ratio=target.ratio,
        target_value=target.value,
        **fields,
    )


def answers(target: Target, figures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The figure (JSON) of a scenario's result that answers ``target``: by key, else by the
    names older results (without keys) used, else, for a scenario with one target, its first
    figure with a target that names no other (a scenario written without ``figure()``)."""
    for f in figures:
        if f.get("key") == target.key:
            return f
    for f in figures:
        if not f.get("key") and any(f["name"].startswith(n) for n in target.legacy_names):
            return f
    if sum(t.scenario == target.scenario for t in TARGETS.values()) == 1:
        return next((f for f in figures if "key" in f and not f["key"] and f["target"]), None)
    return None
