"""HTTP load generation in a separate process: wrk (preferred) or ``bench.pyload`` (fallback).

Both generate the same requests. For single-event POSTs each request is a new event: a
thread keeps 64 dossiers in flight and walks each through six statuses (accepted with a
deadline, processing, a supplement request for one dossier in seven, processing, finished,
returned), so consecutive events of one dossier are 64 requests apart, as from a desk system.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.config import PROJECT_ROOT

MARKER = "BENCH_JSON "

LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

LUA_POST_EVENT = r"""
local units = {%(units)s}
local procs = {%(procs)s}
local channels = {1,1,1,1,1,1,1,1,1,1,2,2,2,2,2,2,2,2,2,3}
local steps = {2, 4, 5, 4, 9, 10}
local tag = "%(tag)s"
local base = %(base)d
local path = "%(path)s"
local headers = {["Content-Type"] = "application/json"%(auth)s}
local counter = 0

local function iso(t) return os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", t) end

request = function()
  local n = counter
  counter = counter + 1
  local slot = n %% 64
  local round = math.floor(n / 64)
  local d = math.floor(round / 6) * 64 + slot
  local step = round %% 6
  local status = steps[step + 1]
  local supplement = (d %% 7 == 0)
  if status == 5 and not supplement then status = 4 end
  local unit = units[(d * 7919 + tid * 104729) %% #units + 1]
  local proc = procs[(d * 31 + tid * 17) %% #procs + 1]
  local channel = channels[(d * 13 + tid) %% #channels + 1]
  local received = base + (d %% 20000) * 7
  local at = received + step * 5400
  local extra = ""
  if step == 0 then
    extra = string.format(',"received_at":"%%s","due_at":"%%s"',
                          iso(received), iso(received + 3 * 86400))
  elseif step == 3 and supplement then
    extra = string.format(',"supplement_supplied_at":"%%s"', iso(at))
  end
  local body = string.format(
    '{"event_id":"%%s-%%d-%%d","dossier_code":"%%s-%%d-%%d",' ..
    '"unit_code":"%%s","procedure_code":"%%s","status":%%d,"occurred_at":"%%s","channel":%%d,"applicant_kind":1,"has_digitized_parts":true%%s}',
    tag, tid, n, tag, tid, d, unit, proc, status, iso(at), channel, extra)
  return wrk.format("POST", path, headers, body)
end
"""

LUA_GET = r"""
local path = "%(path)s"
local headers = {%(headers)s}
request = function()
  return wrk.format("GET", path, headers)
end
"""


@dataclass
class PostEventSpec:
    """What single-event POST requests look like; shared by the Lua script and pyload."""

    tag: str
    base: int  # epoch seconds of the first receipt
    units: list[str]
    procedures: list[str]
    path: str
    token: str | None = None


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1)}


def error_summary(label: str, results: list[LoadResult]) -> str | None:
    """A note when any run had failed requests (non-2xx/3xx answers, timeouts, resets)."""
    failed = sum(r.failed for r in results)
    if not failed:
        return None
    total = sum(r.requests for r in results)
    kinds: dict[str, int] = {}
    for r in results:
        for kind, count in r.errors.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return f"{label}: {failed:,} of {total:,} requests failed {kinds}"


def _lua_list(values: list[str]) -> str:
    return ",".join(json.dumps(v) for v in values)


def _lua_headers(headers: dict[str, str]) -> str:
    return ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())


def _parse(output: str, tool: str) -> LoadResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"{tool} printed no summary:\n{output[-2000:]}")
    data = json.loads(line[len(MARKER) :])
    seconds = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return LoadResult(
        tool=tool,
        requests=data["requests"],
        seconds=round(seconds, 3),
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        errors={k: v for k, v in data["errors"].items() if v},
    )


class LoadGenerator:
    def __init__(self, wrk: str | None, work_dir: Path, connections: int, threads: int) -> None:
        self.wrk = wrk
        self.work_dir = work_dir
        self.connections = connections
        self.threads = threads
        self._scripts = 0

    @property
    def tool(self) -> str:
        return "wrk" if self.wrk else "python (bench.pyload)"

    def _script(self, text: str) -> Path:
        self._scripts += 1
        path = self.work_dir / f"script-{self._scripts}.lua"
        path.write_text(LUA_COMMON + text)
        return path

    def _wrk(self, url: str, script: Path, seconds: int) -> LoadResult:
        assert self.wrk is not None
        command = [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        return _parse(out.stdout + out.stderr, "wrk")

    def _pyload(self, config: dict[str, Any], seconds: int) -> LoadResult:
        path = self.work_dir / f"pyload-{self._scripts}.json"
        self._scripts += 1
        path.write_text(json.dumps(config))
        command = [
            sys.executable,
            "-m",
            "bench.pyload",
            str(path),
            str(seconds),
            str(self.connections),
        ]
        out = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT
        )
        return _parse(out.stdout + out.stderr, "python")

    def post_events(self, base_url: str, spec: PostEventSpec, seconds: int) -> LoadResult:
        if self.wrk is None:
            return self._pyload({"mode": "post-event", "url": base_url, **asdict(spec)}, seconds)
        auth = f', ["Authorization"] = "Bearer {spec.token}"' if spec.token else ""
        script = self._script(
            LUA_POST_EVENT
            % {
                "units": _lua_list(spec.units),
                "procs": _lua_list(spec.procedures),
                "tag": spec.tag,
                "base": spec.base,
                "path": spec.path,
                "auth": auth,
            }
        )
        return self._wrk(base_url, script, seconds)

    def get(self, base_url: str, path: str, headers: dict[str, str], seconds: int) -> LoadResult:
        if self.wrk is None:
            config = {"mode": "get", "url": base_url, "path": path, "headers": headers}
            return self._pyload(config, seconds)
        script = self._script(LUA_GET % {"path": path, "headers": _lua_headers(headers)})
        return self._wrk(base_url, script, seconds)


def iso_z(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def post_event_body(spec: dict[str, Any], tid: int, n: int) -> bytes:
    """The Python twin of the Lua ``request()``: the same bodies for the same (tid, n)."""
    channels = [1] * 10 + [2] * 9 + [3]
    steps = [2, 4, 5, 4, 9, 10]
    slot, rnd = n % 64, n // 64
    d = (rnd // 6) * 64 + slot
    step = rnd % 6
    status = steps[step]
    supplement = d % 7 == 0
    if status == 5 and not supplement:
        status = 4
    units, procs = spec["units"], spec["procedures"]
    received = spec["base"] + (d % 20000) * 7
    at = received + step * 5400
    body: dict[str, Any] = {
        "event_id": f"{spec['tag']}-{tid}-{n}",
        "dossier_code": f"{spec['tag']}-{tid}-{d}",
        "unit_code": units[(d * 7919 + tid * 104729) % len(units)],
        "procedure_code": procs[(d * 31 + tid * 17) % len(procs)],
        "status": status,
        "occurred_at": iso_z(at),
        "channel": channels[(d * 13 + tid) % len(channels)],
        "applicant_kind": 1,
        "has_digitized_parts": True,
    }
    if step == 0:
        body.update(received_at=iso_z(received), due_at=iso_z(received + 3 * 86400))
    elif step == 3 and supplement:
        body["supplement_supplied_at"] = iso_z(at)
    return json.dumps(body, separators=(",", ":")).encode()


_SAFE_TAG = re.compile(r"^[A-Za-z0-9-]+$")


def check_tag(tag: str) -> str:
    if not _SAFE_TAG.match(tag):
        raise ValueError(f"tag {tag!r} must be alphanumeric")
    return tag
