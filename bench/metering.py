"""An ingestion round on the clock, and what it cost around it: the log the database wrote
(:mod:`bench.writes`) and each side's CPU (:mod:`bench.cpu`), chiso's rounds and their
``COPY``'s measured alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from bench import cpu, writes
from bench.context import Bench
from bench.model import Figure

T = TypeVar("T")


def metered(bench: Bench, events: int, work: Callable[[], T]) -> tuple[T, float, dict[str, Any]]:
    """Run ``work`` on the clock: its result, its seconds, and the round's readings per event of
    the ``events`` it stores (``{"writes": …, "cpu": …}``). The readings are taken off the
    clock: the log's (after a checkpoint, with ``--checkpoint-rounds``), then the CPU's before
    it starts; the CPU's, then the log's as soon as it stops."""
    before = writes.start(bench)
    used = bench.cpu_usage()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    spent = cpu.spent(used, bench.cpu_usage(), seconds, events)
    wrote = writes.written(before, writes.reading(bench.db_url), events)
    return result, seconds, {"writes": wrote, "cpu": spent}


def figures(subjects: list[dict[str, Any]], bases: list[dict[str, Any]]) -> list[Figure]:
    """What the rounds' readings say, chiso's against the ``COPY``'s: log, then CPU."""
    return [writes.wal_figure(subjects, bases), *cpu.cpu_figures(subjects, bases)]
