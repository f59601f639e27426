"""Rankings polling: ``GET /v1/rankings`` ``200`` and ``304`` vs a bare constant JSON endpoint.

The baseline serves a constant body of the same size with an ETag (``bench/baseline.py``);
``304`` is compared with the baseline's own ``304``. Targets (``bench/targets.py``): ``200`` and
``304`` each ≥ 1 × the constant endpoint's, with p50 and p99 latency shown on both sides.
Skipped, with a message, while the API has no ``GET /v1/rankings``. The query defaults to the
national ranking of provinces for the previous month (the month the recompute scenario filled);
``--rankings-query 'level=commune&period=2026-10'`` asks for another. Requests are anonymous
(rankings are public) and send no ``Accept-Encoding``, so both sides answer identity bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from bench.context import Bench
from bench.datagen import month_bounds
from bench.loadgen import LoadResult, error_summary
from bench.model import ScenarioResult, interleaved, median
from bench.targets import figure

TITLE = "Rankings polling"
PATH = "/v1/rankings"


def run(bench: Bench) -> ScenarioResult:
    bench.start_http()
    result = ScenarioResult("rankings", TITLE)
    spec = httpx.get(f"{bench.api_url}/openapi.json", timeout=10).json()
    if "get" not in spec.get("paths", {}).get(PATH, {}):
        result.status = "skipped"
        result.message = f"the API has no GET {PATH} yet (checked /openapi.json)"
        return result
    start, end = month_bounds(datetime.now(UTC))
    month = f"{start + (end - start) / 2:%Y-%m}"
    path = f"{PATH}?{bench.options.rankings_query or f'level=province&period={month}'}"
    auth: dict[str, str] = {}
    first = httpx.get(bench.api_url + path, timeout=120)  # may compute the period on demand
    if first.status_code != 200:
        result.status = "skipped"
        result.message = (
            f"GET {path} answered {first.status_code}: {first.text[:200]} (pass --rankings-query)"
        )
        return result
    size = len(first.content)
    etag = first.headers.get("etag")
    bare_path = f"/constant?bytes={size}"
    bare_etag = httpx.get(bench.baseline_url + bare_path, timeout=10).headers["etag"]
    scale = bench.scale
    result.details = {"body_bytes": size, "etag": etag}

    def measure(conditional: bool) -> tuple[list[LoadResult], list[LoadResult]]:
        subject_headers = dict(auth)
        bare_headers: dict[str, str] = {}
        if conditional:
            assert etag is not None
            subject_headers["If-None-Match"] = etag
            bare_headers["If-None-Match"] = bare_etag
            check = httpx.get(bench.api_url + path, headers=subject_headers, timeout=30)
            if check.status_code != 304:
                raise RuntimeError(f"If-None-Match answered {check.status_code}, not 304")

        def subject(_: int) -> LoadResult:
            return bench.loadgen.get(bench.api_url, path, subject_headers, scale.http_seconds)

        def baseline(_: int) -> LoadResult:
            return bench.loadgen.get(
                bench.baseline_url, bare_path, bare_headers, scale.http_seconds
            )

        subject(0)  # warm-up
        baseline(0)
        out = interleaved(scale.rounds, baseline, subject)
        profiler = bench.profiler("rankings", bench.api_worker_pids(), scale.http_seconds)
        if profiler is not None and conditional:  # the cheapest path: what every poll pays
            profiler.start()
            subject(0)
            profiler.stop()
            bench.profiles["rankings_304"] = profiler.summary()
        return out

    for status, conditional in (("200", False), ("304", True)):
        if conditional and not etag:
            result.message = "no ETag on the 200 answer: the 304 figures are missing"
            continue
        bases, subjects = measure(conditional)
        for label, runs in ((f"chiso {status}", subjects), (f"bare {status}", bases)):
            if (error := error_summary(label, runs)) is not None:
                result.status = "failed"
                result.message = "; ".join(filter(None, [result.message, error]))
        rounds = [
            {"baseline": b.as_json(), "subject": s.as_json()}
            for b, s in zip(bases, subjects, strict=True)
        ]
        result.figures.append(
            figure(
                f"rankings_{status}",
                f"{status} throughput",
                "req/s",
                median([s.rps for s in subjects]),
                baseline=median([b.rps for b in bases]),
                baseline_name=f"bare constant JSON ({status})",
                p50_ms=median([s.p50_ms for s in subjects]),
                p99_ms=median([s.p99_ms for s in subjects]),
                baseline_p50_ms=median([b.p50_ms for b in bases]),
                baseline_p99_ms=median([b.p99_ms for b in bases]),
                rounds=rounds,
                note=f"{size:,}-byte body",
            )
        )
    return result
