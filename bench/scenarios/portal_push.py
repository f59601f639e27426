"""Portal record sync (``POST /dvcqg/service``, ``DongBoHoSoMC``) vs raw asyncpg ``COPY`` of the
``dossier_events`` rows those records produce.

A one-stop system pushing its dossiers the way real ones do: it logs in (``/dvcqg/login``, the
API key as the password) for a session, then posts ``DongBoHoSoMC`` calls of
``records_per_request`` records each, ``batch_concurrency`` in flight (as the batch scenario).
The records are the portal simulator's (the shapes real producers send: personal data, nested
lists, gaps), each round fresh dossiers of the bench's units. The baseline COPYs the rows the
same records produce (read by the app's own record reader, before the clock starts), request
by request with the same concurrency, into a copy of ``dossier_events`` with the same indexes.

Sizes follow the batch scenario's: a round is ``batch_events / 5`` records (a record implies
about three events), a request ``batch_size / 5`` records. Each round's queued dossiers are
derived afterwards, off the clock, so that later scenarios start with an empty queue.

Target: ≥ 0.2 × raw COPY.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import orjson

from bench import metering
from bench.context import Bench
from bench.datagen import EVENT_COLUMNS
from bench.infra import log
from bench.metering import metered
from bench.model import Figure, RoundData, ScenarioResult, interleaved, median, percentile
from bench.scenarios.batch import _copy_all, _derive_all
from bench.targets import figure

TITLE = "Portal records"
EVENTS_PER_RECORD = 5  # sizes: the batch scenario's events, divided by this


def _sizes(bench: Bench) -> tuple[int, int]:
    scale = bench.scale
    per_request = max(1, scale.batch_size // EVENTS_PER_RECORD)
    return scale.batch_events // EVENTS_PER_RECORD, per_request


def _records(bench: Bench, tag: str, count: int) -> list[dict[str, Any]]:
    """``count`` simulated records of the bench's units, their dossier codes unique to ``tag``."""
    from app.portal.simulator import PortalSimulator

    units = sorted(set(bench.unit_pool))
    seed = int(hashlib.sha256(tag.encode()).hexdigest()[:8], 16)
    simulator = PortalSimulator(dossiers=count, seed=seed, units=units)
    mark = hashlib.sha256(tag.encode()).hexdigest()[:6]
    records = []
    for n, record in enumerate(simulator.records):
        prefix, day, _ = record["MaHoSo"].split("-", 2)
        record["MaHoSo"] = f"{prefix}-{day}-{mark}{n:06d}"
        records.append(record)
    return records


def _rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The ``dossier_events`` rows the records produce, read by the app's record reader."""
    from app.portal.records import parse_records

    rows = []
    for _, parsed, _ in parse_records(records, None):
        if parsed is None:
            continue
        for event in parsed.events:
            values = event.model_dump()
            rows.append((*(values[c] for c in EVENT_COLUMNS), "bench"))
    return rows


Prepared = tuple[list[bytes], list[list[tuple[Any, ...]]], int, int]


def _prepare(bench: Bench, tag: str) -> Prepared:
    count, per_request = _sizes(bench)
    records = _records(bench, tag, count)
    bodies, rows = [], []
    events = 0
    for i in range(0, len(records), per_request):
        chunk = records[i : i + per_request]
        bodies.append(chunk)
        rows.append(_rows(chunk))
        events += len(rows[-1])
    calls = [
        orjson.dumps({"service": "DongBoHoSoMC", "isUpdating": "False", "data": chunk})
        for chunk in bodies
    ]
    return calls, rows, len(records), events


async def _login(client: httpx.AsyncClient, bench: Bench) -> str:
    response = await client.post(
        "/dvcqg/login", json={"username": "bench", "password": bench.api_key}
    )
    data = response.json()
    if response.status_code != 200 or data.get("error_code") != 0:
        raise RuntimeError(f"login: HTTP {response.status_code} {response.text[:300]}")
    return str(data["session"])


async def _push_all(bench: Bench, calls: list[bytes]) -> dict[str, Any]:
    queue = list(reversed(calls))
    totals = {"stored": 0, "updated": 0, "duplicate": 0, "quarantined": 0, "rejected": 0}
    latencies: list[float] = []
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=bench.api_url, timeout=600, headers=headers) as client:
        session = await _login(client, bench)
        prefix = b'{"session":' + orjson.dumps(session) + b","

        async def worker() -> None:
            while queue:
                body = prefix + queue.pop()[1:]
                started = time.perf_counter()
                response = await client.post("/dvcqg/service", content=body)
                latencies.append((time.perf_counter() - started) * 1000)
                data = response.json()
                if response.status_code != 200 or data.get("counts") is None:
                    raise RuntimeError(
                        f"DongBoHoSoMC: HTTP {response.status_code} {response.text[:500]}"
                    )
                for key in totals:
                    totals[key] += data["counts"][key]

        await asyncio.gather(*(worker() for _ in range(bench.scale.batch_concurrency)))
    return {**totals, "latencies": latencies}


def _timing(latencies_ms: list[float]) -> dict[str, float | None]:
    return {"p50_ms": percentile(latencies_ms, 0.5), "p99_ms": percentile(latencies_ms, 0.99)}


def run(bench: Bench) -> ScenarioResult:
    bench.start_http()
    scale = bench.scale
    data: RoundData[Prepared] = RoundData(lambda r: _prepare(bench, f"{bench.run_id}P{r}"))

    def subject(r: int) -> dict[str, Any]:
        calls, _, records, events = data(r)
        pushed, seconds, readings = metered(
            bench, events, lambda: asyncio.run(_push_all(bench, calls))
        )
        latencies = pushed.pop("latencies")
        derived = asyncio.run(_derive_all(bench))  # off the clock: leave an empty queue
        log(
            f"portal round {r}: {records:,} records ({events:,} events) in {seconds:.1f}s "
            f"({records / seconds:,.0f} records/s, {events / seconds:,.0f} events/s); "
            f"{derived:,} dossiers derived afterwards"
        )
        return {
            "records": records,
            "events": events,
            "seconds": round(seconds, 3),
            "records_per_s": records / seconds,
            "events_per_s": events / seconds,
            "requests": len(calls),
            **_timing(latencies),
            **pushed,
            **readings,
        }

    def baseline(r: int) -> dict[str, Any]:
        _, rows, records, events = data(r)
        latencies, seconds, readings = metered(
            bench, events, lambda: asyncio.run(_copy_all(bench, rows))
        )
        return {
            "records": records,
            "events": events,
            "seconds": round(seconds, 3),
            "events_per_s": events / seconds,
            **_timing(latencies),
            **readings,
        }

    bases, subjects = interleaved(scale.rounds, baseline, subject)

    profiler = bench.profiler("portal_push", bench.api_worker_pids(), 600)
    if profiler is not None:
        calls, _, _, _ = _prepare(bench, f"{bench.run_id}PP")
        profiler.start()
        asyncio.run(_push_all(bench, calls))
        profiler.stop()
        bench.profiles["portal_push"] = profiler.summary()
        asyncio.run(_derive_all(bench))

    count, per_request = _sizes(bench)
    rounds = [{"baseline": b, "subject": s} for b, s in zip(bases, subjects, strict=True)]
    note = (
        f"{count:,} simulated records/round, {per_request:,} a request, "
        f"{scale.batch_concurrency} in flight; events = the dossier_events rows they produce"
    )
    result = ScenarioResult("portal_push", TITLE)
    result.figures = [
        figure(
            "portal_push",
            "events/s vs COPY",
            "events/s",
            median([s["events_per_s"] for s in subjects]),
            baseline=median([b["events_per_s"] for b in bases]),
            baseline_name="raw asyncpg COPY of the rows the records produce",
            rounds=rounds,
            note=note,
            p50_ms=median([s["p50_ms"] for s in subjects]),
            p99_ms=median([s["p99_ms"] for s in subjects]),
            baseline_p50_ms=median([b["p50_ms"] for b in bases]),
            baseline_p99_ms=median([b["p99_ms"] for b in bases]),
        ),
        Figure("records/s", "records/s", median([s["records_per_s"] for s in subjects])),
        *metering.figures(subjects, bases),
    ]
    refused = sum(s["rejected"] + s["quarantined"] for s in subjects)
    if refused:
        result.message = f"{refused} records rejected or quarantined: the data disagrees"
    return result
