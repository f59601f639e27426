"""What a scenario reports: figures (each with its same-run baseline, ratio and target)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Figure:
    """One measured figure. ``ratio`` is always ``value / baseline``; ``target_ratio`` is a
    minimum when ``higher_is_better`` else a maximum; ``target_value`` an absolute minimum.
    ``key`` names the entry of ``bench.targets.TARGETS`` it answers, if any. Throughput
    figures carry the latency of what they count (requests, batches, …): p50 and p99 in ms,
    for chiso and for the baseline."""

    name: str
    unit: str
    value: float | None
    baseline: float | None = None
    baseline_name: str | None = None
    higher_is_better: bool = True
    target_ratio: float | None = None
    target_value: float | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    key: str | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def target(self) -> str | None:
        parts = []
        if self.target_ratio is not None:
            sign = "≥" if self.higher_is_better else "≤"
            parts.append(f"{sign} {self.target_ratio:g} ×")
        if self.target_value is not None:
            parts.append(f"≥ {self.target_value:,.0f} {self.unit}")
        return "; ".join(parts) or None

    @property
    def met(self) -> bool | None:
        checks: list[bool] = []
        ratio = self.ratio
        if self.target_ratio is not None:
            if ratio is None:
                return None
            ok = ratio >= self.target_ratio if self.higher_is_better else ratio <= self.target_ratio
            checks.append(ok)
        if self.target_value is not None:
            if self.value is None:
                return None
            checks.append(self.value >= self.target_value)
        return all(checks) if checks else None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": round(self.ratio, 4) if self.ratio is not None else None,
            "higher_is_better": self.higher_is_better,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "key": self.key,
            "latency_ms": _latency(self.p50_ms, self.p99_ms),
            "baseline_latency_ms": _latency(self.baseline_p50_ms, self.baseline_p99_ms),
            "rounds": self.rounds,
        }


def _latency(p50: float | None, p99: float | None) -> dict[str, float | None] | None:
    if p50 is None and p99 is None:
        return None
    return {"p50": _round(p50), "p99": _round(p99)}


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclass
class ScenarioResult:
    name: str
    title: str
    status: str = "ok"  # ok | skipped | failed
    message: str | None = None
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    api_processes: int | None = None  # the HTTP scenarios' API (and baseline) process count

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "api_processes": self.api_processes,
            "title": self.title,
            "status": self.status,
            "message": self.message,
            "seconds": round(self.seconds, 1),
            "figures": [f.as_json() for f in self.figures],
            "details": self.details,
        }


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0–1) of ``values``, nearest rank (as wrk reports its own)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def interleaved(
    rounds: int, baseline: Callable[[int], T], subject: Callable[[int], T]
) -> tuple[list[T], list[T]]:
    """Run baseline and subject alternately, swapping which goes first every round."""
    base_out: list[T] = []
    subj_out: list[T] = []
    for r in range(rounds):
        if r % 2 == 0:
            base_out.append(baseline(r))
            subj_out.append(subject(r))
        else:
            subj_out.append(subject(r))
            base_out.append(baseline(r))
    return base_out, subj_out


class RoundData(Generic[T]):
    """What a round's baseline and subject both use, made once for that round and kept only
    while it runs: a national round's rows are large, and the next round makes its own."""

    def __init__(self, make: Callable[[int], T]) -> None:
        self.make = make
        self.kept: tuple[int, T] | None = None

    def __call__(self, r: int) -> T:
        if self.kept is None or self.kept[0] != r:
            self.kept = None  # the last round's rows go before this round's are made
            self.kept = (r, self.make(r))
        return self.kept[1]

    def clear(self) -> None:
        self.kept = None
