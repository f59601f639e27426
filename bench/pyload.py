"""Fallback HTTP load generator (when wrk is unavailable): keep-alive HTTP/1.1 connections on
raw asyncio streams, closed loop, same requests and same summary line as the wrk scripts.

``python -m bench.pyload CONFIG.json SECONDS CONNECTIONS``. It is slower than wrk and shares
the machine's cores with the server, so its figures are lower bounds; results say so.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench.loadgen import MARKER, post_event_body


def _request(config: dict[str, Any], host: str, tid: int, n: int) -> bytes:
    headers = {"Host": host, "Connection": "keep-alive", **config.get("headers", {})}
    if config["mode"] == "post-event":
        body = post_event_body(config, tid, n)
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        if config.get("token"):
            headers["Authorization"] = f"Bearer {config['token']}"
        head = f"POST {config['path']} HTTP/1.1\r\n"
    else:
        body = b""
        head = f"GET {config['path']} HTTP/1.1\r\n"
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + lines + "\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    config: dict[str, Any], tid: int, stop_at: float, latencies: list[float], errors: dict[str, int]
) -> None:
    url = urlsplit(config["url"])
    host = url.hostname or "127.0.0.1"
    port = url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while time.perf_counter() < stop_at:
            payload = _request(config, f"{host}:{port}", tid, n)
            n += 1
            started = time.perf_counter()
            writer.write(payload)
            try:
                status = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                errors["read"] = errors.get("read", 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                errors["status"] = errors.get("status", 0) + 1
    finally:
        writer.close()


async def main(config: dict[str, Any], seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_worker(config, tid + 1, stop_at, latencies, errors) for tid in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> int:
        if not latencies:
            return 0
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e6)

    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": 0,
        "errors": {k: errors.get(k, 0) for k in ("connect", "read", "write", "status", "timeout")},
        "latency_us": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": int(latencies[-1] * 1e6) if latencies else 0,
            "mean": sum(latencies) / len(latencies) * 1e6 if latencies else 0.0,
        },
    }


if __name__ == "__main__":
    cfg = json.loads(open(sys.argv[1], encoding="utf-8").read())  # noqa: SIM115
    summary = asyncio.run(main(cfg, float(sys.argv[2]), int(sys.argv[3])))
    print(MARKER + json.dumps(summary), flush=True)
