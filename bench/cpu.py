"""Where a round's CPU goes: the API's processes, PostgreSQL's, the bench's own, the machine's.

On a machine of two cores an ingestion path is bound by CPU, and the question a slow figure
asks is whose: the API's Python (one process can use one core at most), the database's
statements, or neither (the cores idle while each side waits for the other). A py-spy profile
answers it for Python only; these readings, from ``/proc``, answer it for every side, in
every run, around what the clock measures:

- ``api``: the API's process tree (the uvicorn parent and its workers);
- ``postgres``: the server's (every backend, the WAL writer, the checkpointer, …), found
  from the reading connection's backend; ``None`` when the server runs elsewhere;
- ``client``: the bench process itself (the load it sends, the ``COPY`` it encodes);
- ``busy``: every core's busy time (``/proc/stat``), whoever spent it.

A process's own time plus that of its ended children it waited for (``cutime``): a backend
that ends during a round is counted by its parent, the postmaster. Seconds of CPU, not of
wall-clock time: 1.0 a second is one core kept busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.infra import plain_url
from bench.model import Figure, median

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds spent so far by each side (``None``: not readable here)."""

    api: float | None
    postgres: float | None
    client: float
    busy: float


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(state, parent pid, CPU seconds of the process and of its ended children it waited
    for), from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    # fields[0] is field 3 (state), ppid field 4, utime..cstime fields 14..17.
    return fields[0], int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICK


def tree_seconds(root: int, patience: float = 2.0) -> float | None:
    """CPU seconds of ``root`` and of every process below it (``None``: no such process).

    A process that ends while the tree is read may be missed: gone when its turn comes, but
    not yet in its parent's count when the parent was read; and a child that has ended but
    not yet been waited for (a zombie) shows no time at all. So the tree is read again until
    two readings in a row agree, with no zombie in it (for at most ``patience`` seconds): a
    connection closed just before, whose backend is ending, is not lost."""
    deadline = time.monotonic() + patience
    last: tuple[float, frozenset[int]] | None = None
    while True:
        read = _tree(root)
        if read is None:
            return None
        total, pids, waiting = read
        if (not waiting and last == (total, pids)) or time.monotonic() > deadline:
            return total
        last = (total, pids)
        time.sleep(0.01)


def _tree(root: int) -> tuple[float, frozenset[int], bool] | None:
    """One reading of ``root``'s tree: its CPU seconds, its processes, and whether one of them
    is a zombie (``None``: no such process)."""
    parents: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    zombies: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (read := _stat(int(entry.name))) is not None:
            pid = int(entry.name)
            parents.setdefault(read[1], []).append(pid)
            seconds[pid] = read[2]
            if read[0] == "Z":
                zombies.add(pid)
    if root not in seconds:
        return None
    total, todo, pids = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        pids.add(pid)
        total += seconds.get(pid, 0.0)
        todo.extend(parents.get(pid, ()))
    return total, frozenset(pids), bool(pids & zombies)


def busy_seconds() -> float:
    """Every core's busy time so far: all but idle and I/O wait (``/proc/stat``'s cpu line)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: inside user and nice]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK


def client_seconds() -> float:
    """This process's CPU time and that of its children it waited for."""
    spent = os.times()
    return spent.user + spent.system + spent.children_user + spent.children_system


async def _backend_parent(url: str) -> int | None:
    """The parent of a backend of the server: its postmaster, if the server runs here."""
    conn = await asyncpg.connect(plain_url(url))
    try:  # read while the backend lives
        read = _stat(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()
    return None if read is None else read[1]


def postmaster(url: str) -> int | None:
    """The server's postmaster, when it runs on this machine (else None)."""
    parent = asyncio.run(_backend_parent(url))
    with contextlib.suppress(OSError):
        # A backend of another machine (or container) may share a pid with a local process:
        # only a postgres parent is taken.
        if parent is not None and b"postgres" in Path(f"/proc/{parent}/cmdline").read_bytes():
            return parent
    return None


def usage(api_pid: int | None, postmaster_pid: int | None) -> Usage:
    return Usage(
        api=tree_seconds(api_pid) if api_pid is not None else None,
        postgres=tree_seconds(postmaster_pid) if postmaster_pid is not None else None,
        client=client_seconds(),
        busy=busy_seconds(),
    )


def spent(before: Usage, after: Usage, seconds: float, events: int) -> dict[str, Any]:
    """What each side spent between two readings: seconds, and ms per 1,000 events;
    ``busy_cores``: the cores kept busy, on average, over the ``seconds`` the round took."""

    def side(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else max(b - a, 0.0)

    sides = {
        "api": side(before.api, after.api),
        "postgres": side(before.postgres, after.postgres),
        "client": side(before.client, after.client),
    }
    result: dict[str, Any] = {f"{name}_s": value for name, value in sides.items()}
    for name, value in sides.items():
        # None when nothing was counted: less than a clock tick (10 ms) is not measured.
        result[f"{name}_ms_per_1000"] = value * 1000 * 1000 / events if value and events else None
    busy = side(before.busy, after.busy)
    result["busy_cores"] = busy / seconds if busy is not None and seconds > 0 else None
    return result


def cpu_figures(subjects: list[dict[str, Any]], bases: list[dict[str, Any]]) -> list[Figure]:
    """PostgreSQL's CPU per 1,000 events in chiso's rounds against the ``COPY``'s, and the API's
    (medians; no target: they say where the time goes, not whether it is fast enough)."""
    note = "CPU ms per 1,000 events while the clock ran (rounds[].cpu); busy cores: {}"
    busy = median([c for r in subjects if (c := r["cpu"]["busy_cores"]) is not None])
    shown = "–" if busy is None else f"{busy:.2f} of {os.cpu_count()}"
    # (name, chiso's side, the baseline's side, the baseline's name, note)
    pairs = (
        ("PostgreSQL CPU per 1,000 events vs COPY", "postgres", "postgres", "the COPY's",
         note.format(shown)),
        ("API CPU per 1,000 events vs the COPY's client", "api", "client",
         "the bench encoding the COPY", None),
    )  # fmt: skip
    figures = [
        Figure(name, "ms", _median(subjects, side), baseline=_median(bases, base),
               baseline_name=base_name, higher_is_better=False, note=text)
        for name, side, base, base_name, text in pairs
    ]  # fmt: skip
    return [f for f in figures if f.value is not None]


def _median(rounds: list[dict[str, Any]], side: str) -> float | None:
    return median([v for r in rounds if (v := r["cpu"][f"{side}_ms_per_1000"]) is not None])
