"""Single-event ``POST /v1/dossier-events`` vs a bare FastAPI + asyncpg one-row insert.

Target (``bench/targets.py``): throughput ≥ 0.5 × the bare endpoint's. The figure carries the
requests' p50 and p99 latency on both sides (closed loop at the same connection count, so they
include queueing). Run once per API process count of ``--workers``.
"""

from __future__ import annotations

import time

from bench.context import Bench
from bench.loadgen import LoadResult, PostEventSpec, error_summary
from bench.model import ScenarioResult, interleaved, median
from bench.targets import figure

TITLE = "Single-event POST"


def run(bench: Bench) -> ScenarioResult:
    bench.start_http()
    scale = bench.scale
    base = int(time.time()) - 30 * 86400
    procedures = [p.code for p in bench.procedures]

    def spec(kind: str, r: int) -> PostEventSpec:
        tag = bench.tag(f"{kind}{r}")
        if kind == "s":
            return PostEventSpec(
                tag, base, bench.unit_pool, procedures, "/v1/dossier-events", bench.api_key
            )
        return PostEventSpec(tag, base, bench.unit_pool, procedures, "/events")

    def subject(r: int) -> LoadResult:
        return bench.loadgen.post_events(bench.api_url, spec("s", r), scale.http_seconds)

    def baseline(r: int) -> LoadResult:
        return bench.loadgen.post_events(bench.baseline_url, spec("b", r), scale.http_seconds)

    bench.loadgen.post_events(bench.api_url, spec("sw", 0), scale.warmup_seconds)
    bench.loadgen.post_events(bench.baseline_url, spec("bw", 0), scale.warmup_seconds)
    bases, subjects = interleaved(scale.rounds, baseline, subject)

    profiler = bench.profiler("single_post", bench.api_worker_pids(), scale.http_seconds)
    if profiler is not None:
        profiler.start()
        bench.loadgen.post_events(bench.api_url, spec("sp", 0), scale.http_seconds)
        profiler.stop()
        bench.profiles["single_post"] = profiler.summary()

    rounds = [
        {"baseline": b.as_json(), "subject": s.as_json()}
        for b, s in zip(bases, subjects, strict=True)
    ]
    result = ScenarioResult("single_post", TITLE)
    note = f"{bench.loadgen.tool}, {bench.loadgen.connections} connections"
    result.figures = [
        figure(
            "single_post",
            "throughput",
            "req/s",
            median([s.rps for s in subjects]),
            baseline=median([b.rps for b in bases]),
            baseline_name="bare FastAPI + asyncpg insert",
            p50_ms=median([s.p50_ms for s in subjects]),
            p99_ms=median([s.p99_ms for s in subjects]),
            baseline_p50_ms=median([b.p50_ms for b in bases]),
            baseline_p99_ms=median([b.p99_ms for b in bases]),
            rounds=rounds,
            note=note,
        ),
    ]
    errors = [e for e in (error_summary("chiso", subjects), error_summary("bare", bases)) if e]
    if errors:
        result.status = "failed"
        result.message = "; ".join(errors)
    return result
