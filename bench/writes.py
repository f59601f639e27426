"""What the database writes while a round runs: its write-ahead log, and the checkpoints begun.

The log is where an ingestion path's index pages show. After each checkpoint, the first change
to a page writes the whole page (8 kB, a "full-page image") to the log; so a path that
touches more index pages per event writes more log per event, and, by filling
``max_wal_size`` sooner, brings the next checkpoint (and the next round of whole pages)
closer. Readings are the server's: whatever else runs on it while a round runs counts too,
which is why they are taken only around what the clock measures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.context import Bench
from bench.infra import plain_url
from bench.model import Figure, median

_WAL = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"
# PostgreSQL 17 moved the checkpoint counters from pg_stat_bgwriter to pg_stat_checkpointer.
_CHECKPOINTS = {
    True: "SELECT num_timed + num_requested FROM pg_stat_checkpointer",
    False: "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
}


@dataclass(frozen=True)
class Reading:
    """The log's insert position (bytes since its start) and the checkpoints begun so far."""

    wal: int
    checkpoints: int


async def _read(url: str, checkpoint: bool = False) -> Reading:
    conn = await asyncpg.connect(plain_url(url))
    try:
        if checkpoint:
            await conn.execute("CHECKPOINT")
        version = int(await conn.fetchval("SHOW server_version_num"))
        wal = await conn.fetchval(_WAL)
        checkpoints = await conn.fetchval(_CHECKPOINTS[version >= 170000])
        return Reading(int(wal), int(checkpoints))
    finally:
        await conn.close()


def reading(url: str) -> Reading:
    return asyncio.run(_read(url))


def start(bench: Bench) -> Reading:
    """The reading a round starts from; with ``--checkpoint-rounds``, taken after a checkpoint,
    so that every round, chiso's or its baseline's, first changes each page it touches right
    after one (and writes that whole page to the log), whichever ran before it."""
    return asyncio.run(_read(bench.db_url, checkpoint=bench.options.checkpoint_rounds))


def written(before: Reading, after: Reading, events: int) -> dict[str, Any]:
    """What was written between two readings, per event of the round."""
    wal = after.wal - before.wal
    return {
        "wal_bytes": wal,
        "wal_bytes_per_event": wal / events if events else None,
        "checkpoints": after.checkpoints - before.checkpoints,
    }


def wal_figure(subjects: list[dict[str, Any]], bases: list[dict[str, Any]]) -> Figure:
    """The log written per event by chiso's rounds against the ``COPY`` baseline's (medians;
    no target: it says where a path's time goes, not whether it is fast enough)."""
    return Figure(
        "write-ahead log per event vs COPY",
        "bytes/event",
        _per_event(subjects),
        baseline=_per_event(bases),
        baseline_name="the COPY's",
        higher_is_better=False,
        note="server-wide log bytes while the clock ran, per event stored; checkpoints begun "
        "in each round under rounds[].writes",
    )


def _per_event(rounds: list[dict[str, Any]]) -> float | None:
    return median([v for r in rounds if (v := r["writes"]["wal_bytes_per_event"]) is not None])
