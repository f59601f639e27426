"""Synthetic national data: units, procedures, dossier histories (Python) and bulk rows (SQL).

Shapes follow docs/DOMAIN.md ("Scale"): 34 provinces (the shipped reference data), ~3,300
communes under them plus provincial departments; 3.4 M dossiers a month, ~74 % at commune
level; 5-10 status events per dossier; channels 50 % in person, 45 % online, 5 % postal;
~15 % with a supplement request, ~12 % finished late, ~18 % still open. Deterministic per seed.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from bench.config import PROJECT_ROOT

PROVINCES_CSV = PROJECT_ROOT / "app" / "units" / "reference" / "provinces-2026.csv"
PROCEDURES_CSV = PROJECT_ROOT / "app" / "procedures" / "reference" / "sample-procedures.csv"
COMMUNES = 3_321  # communes after the 1 July 2025 reorganisation
DEPARTMENTS_PER_PROVINCE = 20
GENERATED_PROCEDURES = 188
COMMUNE_SHARE = 0.74  # 2.5 M of 3.4 M dossiers a month are handled at commune level
LIMIT_UNITS = ("working_days", "working_days", "working_days", "working_hours", "calendar_days")
VN = timedelta(hours=7)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str
    parent_code: str | None


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    field_code: str
    limit_value: Decimal
    limit_unit: str
    has_fees: bool
    full_online: bool

    @property
    def approx_days(self) -> float:
        """Rough calendar days to the deadline (data generation only, not deadline rules)."""
        value = float(self.limit_value)
        if self.limit_unit == "working_hours":
            return value / 8 * 1.4
        if self.limit_unit == "months":
            return value * 30
        if self.limit_unit == "calendar_days":
            return value
        return value * 1.4


def provinces() -> list[Unit]:
    rows = csv.DictReader(io.StringIO(PROVINCES_CSV.read_text(encoding="utf-8-sig")))
    return [Unit(r["code"], r["name"], r["level"], r["parent_code"] or None) for r in rows]


def generated_units(seed: int = 2026) -> list[Unit]:
    """Communes (unevenly spread, as in reality) and departments under each province."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    parents = provinces()
    weights = [rng.uniform(0.4, 1.8) for _ in parents]
    total = sum(weights)
    counts = [max(20, round(COMMUNES * w / total)) for w in weights]
    counts[-1] += COMMUNES - sum(counts)
    units: list[Unit] = []
    for province, count in zip(parents, counts, strict=True):
        for n in range(1, count + 1):
            units.append(
                Unit(
                    f"{province.code}.X{n:03d}",
                    f"UBND xã {n} ({province.name})",
                    "commune",
                    province.code,
                )
            )
        for n in range(1, DEPARTMENTS_PER_PROVINCE + 1):
            units.append(
                Unit(
                    f"{province.code}.S{n:02d}",
                    f"Sở {n} ({province.name})",
                    "department",
                    province.code,
                )
            )
    return units


def procedures(seed: int = 2026) -> list[Procedure]:
    """The shipped sample plus generated ones with a realistic spread of limits."""
    rows = csv.DictReader(io.StringIO(PROCEDURES_CSV.read_text(encoding="utf-8-sig")))
    shipped = [
        Procedure(
            r["code"],
            r["name"],
            r["field_code"],
            Decimal(r["limit_value"]),
            r["limit_unit"],
            r["has_fees"] == "true",
            r["full_online"] == "true",
        )
        for r in rows
    ]
    rng = random.Random(seed)  # noqa: S311
    fields = [
        "HOTICH",
        "CHUNGTHUC",
        "DATDAI",
        "XAYDUNG",
        "HOKINHDOANH",
        "GIAODUC",
        "YTE",
        "LAODONG",
    ]
    generated = []
    for n in range(GENERATED_PROCEDURES):
        unit = rng.choice(LIMIT_UNITS)
        value = {
            "working_hours": rng.choice([4, 8, 16]),
            "calendar_days": rng.choice([15, 30]),
        }.get(unit, rng.choice([1, 2, 3, 5, 7, 10, 15, 20]))
        generated.append(
            Procedure(
                f"9.{n:06d}",
                f"Thủ tục tổng hợp {n}",
                rng.choice(fields),
                Decimal(value),
                unit,
                rng.random() < 0.5,
                rng.random() < 0.4,
            )
        )
    return shipped + generated


async def load_reference(conn: asyncpg.Connection) -> tuple[list[Unit], list[Procedure]]:
    """Generated units and procedures (the shipped provinces are loaded by the app first)."""
    units = generated_units()
    procs = procedures()
    await conn.executemany(
        "INSERT INTO units (code, name, level, parent_code, valid_from) "
        "VALUES ($1, $2, $3, $4, DATE '2025-07-01') ON CONFLICT (code) DO NOTHING",
        [(u.code, u.name, u.level, u.parent_code) for u in units],
    )
    await conn.executemany(
        "INSERT INTO procedures (code, name, field_code, limit_value, limit_unit, has_fees, "
        "full_online) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
        [
            (p.code, p.name, p.field_code, p.limit_value, p.limit_unit, p.has_fees, p.full_online)
            for p in procs
        ],
    )
    return units, procs


def weighted_units(units: Sequence[Unit], size: int = 10_000, seed: int = 7) -> list[str]:
    """A pool of unit codes in which communes hold ``COMMUNE_SHARE`` of the entries."""
    rng = random.Random(seed)  # noqa: S311
    communes = [u.code for u in units if u.level == "commune"]
    others = [u.code for u in units if u.level != "commune"] + [p.code for p in provinces()]
    return [
        rng.choice(communes) if rng.random() < COMMUNE_SHARE else rng.choice(others)
        for _ in range(size)
    ]


# --- dossier histories, as clients post them ----------------------------------------------

EVENT_COLUMNS = (
    "event_id",
    "dossier_code",
    "unit_code",
    "procedure_code",
    "status",
    "occurred_at",
    "channel",
    "due_at",
    "received_at",
    "note",
    "supplement_supplied_at",
    "supplement_new_due_at",
    "fee_paid_at",
    "apology_issued_at",
    "apology_new_due_at",
    "applicant_kind",
    "paid_online",
    "has_digitized_parts",
)


def _office_instant(rng: random.Random, now: datetime, days_ago: float) -> datetime:
    """A weekday instant within office hours (07:30-17:00 Vietnam time), in UTC."""
    local = (now + VN - timedelta(days=days_ago)).replace(second=0, microsecond=0)
    while local.weekday() >= 5:
        local -= timedelta(days=1)
    minutes = rng.randrange(0, 8 * 60)
    start = (7, 30) if minutes < 240 else (13, 0)
    local = local.replace(hour=start[0], minute=start[1]) + timedelta(minutes=minutes % 240)
    return local - VN


def dossier_history(
    rng: random.Random, code: str, unit: str, proc: Procedure, now: datetime
) -> list[dict[str, Any]]:
    """One dossier's events: registered (online), accepted, processing, maybe supplement or
    fee pauses and an apology, then finished and returned, or still open."""
    channel = rng.choices((1, 2, 3), weights=(50, 45, 5))[0]
    received = _office_instant(rng, now, rng.uniform(0.5, 40))
    span = timedelta(days=proc.approx_days)
    due = received + span
    common = {
        "dossier_code": code,
        "unit_code": unit,
        "procedure_code": proc.code,
        "channel": channel,
        "applicant_kind": rng.choice((1, 1, 1, 2)),
        "paid_online": channel == 2 and proc.has_fees and rng.random() < 0.6,
        "has_digitized_parts": rng.random() < 0.5,
    }
    events: list[tuple[int, datetime, dict[str, Any]]] = []
    if channel == 2:
        events.append((1, received - timedelta(minutes=rng.uniform(5, 600)), {}))
        if rng.random() < 0.02:  # refused at the desk
            events.append((3, received, {}))
            return _numbered(code, common, events)
    events.append((2, received, {"received_at": received, "due_at": due}))
    at = received + timedelta(hours=rng.uniform(0.2, 4))
    events.append((4, at, {}))
    shift = timedelta(0)
    if rng.random() < 0.15:  # supplement requested, papers supplied later
        asked = at + span * rng.uniform(0.1, 0.5)
        supplied = asked + timedelta(hours=rng.uniform(4, 72))
        events.append((5, asked, {"note": "Thiếu giấy tờ"}))
        if supplied < now:
            events.append((4, supplied, {"supplement_supplied_at": supplied}))
            shift += supplied - asked
    if proc.has_fees and rng.random() < 0.05:  # financial obligation, paid later
        asked = at + timedelta(hours=rng.uniform(1, 8))
        paid = asked + timedelta(hours=rng.uniform(2, 48))
        events.append((6, asked, {}))
        if paid < now:
            events.append((4, paid, {"fee_paid_at": paid}))
            shift += paid - asked
    outcome = rng.random()
    if outcome < 0.70:
        finished: datetime | None = received + (span + shift) * rng.uniform(0.2, 0.95)
    elif outcome < 0.82:
        finished = due + shift + timedelta(hours=rng.uniform(2, 120))
        if rng.random() < 0.3:  # apology letter before the deadline passes
            apology = due + shift - timedelta(hours=rng.uniform(1, 8))
            new_due = finished + timedelta(hours=rng.uniform(1, 24))
            events.append(
                (4, apology, {"apology_issued_at": apology, "apology_new_due_at": new_due})
            )
    else:
        finished = None
    if finished is not None and finished < now:
        events.append((9, finished, {}))
        returned = finished + timedelta(hours=rng.uniform(0.5, 30))
        if returned < now and rng.random() < 0.85:
            events.append((10, returned, {}))
    return _numbered(code, common, [e for e in events if e[1] < now])


def _numbered(
    code: str, common: dict[str, Any], events: list[tuple[int, datetime, dict[str, Any]]]
) -> list[dict[str, Any]]:
    out = []
    for n, (status, at, extra) in enumerate(events):
        event = {"event_id": f"{code}:{n}", **common, "status": status, "occurred_at": at}
        event.update(extra)
        out.append(event)
    return out


def histories(
    tag: str,
    count: int,
    units: Sequence[str],
    procs: Sequence[Procedure],
    now: datetime,
    seed: int = 1,
) -> Iterator[dict[str, Any]]:
    """At least ``count`` events of whole dossier histories, dossier after dossier."""
    rng = random.Random(f"{seed}:{tag}")  # noqa: S311
    produced = dossier = 0
    while produced < count:
        code = f"{tag}-{dossier:07d}"
        unit = units[rng.randrange(len(units))]
        events = dossier_history(rng, code, unit, procs[rng.randrange(len(procs))], now)
        produced += len(events)
        dossier += 1
        yield from events


def copy_record(event: dict[str, Any]) -> tuple[Any, ...]:
    return (*(event.get(c) for c in EVENT_COLUMNS), "bench")


# --- bulk rows in SQL (sweep, month) ------------------------------------------------------

# Pseudo-random numbers in [0, 1) from the row number, so generation is deterministic and
# needs no per-row round trip. Knuth's multiplicative hash with different multipliers.
_U = "((({i} * {m}::bigint) % 4294967296) / 4294967296.0)"


def _u(i: str, m: int) -> str:
    return _U.format(i=i, m=m)


DOSSIER_INSERT_COLUMNS = (
    "code, unit_code, procedure_code, status, channel, received_at, base_due_at, due_at, "
    "end_at, end_status, outcome, counted, clock_stopped_at, overdue_at, supplement_requests, "
    "paused_seconds, pauses, anomalies, applicant_kind, paid_online, has_digitized_parts, "
    "first_event_at, last_event_at, event_count, overdue_since, due_soon_since"
)


def open_dossiers_sql() -> str:
    """Open dossiers for the sweep. Parameters: $1 prefix, $2 first row, $3 last row,
    $4 stride (rows ``i % stride = 0`` become overdue at the sweep, ``= 1`` due soon),
    $5 the sweep instant, $6 the end of the due-soon window, $7 unit pool, $8 procedures.

    Mix of the others: 3 % not yet accepted (not counted), 8 % paused for a supplement, 7 %
    already overdue and flagged by earlier sweeps, 7 % due soon and flagged, the rest due later.
    """
    u1, u2, u3, u4 = (
        _u("i", 2654435761),
        _u("i", 2246822519),
        _u("i", 3266489917),
        _u("i", 668265263),
    )
    return f"""
    WITH base AS (
        SELECT i, {u1} AS u1, {u2} AS u2, {u3} AS u3, {u4} AS u4,
               CASE WHEN i % $4 = 0 THEN 'new_overdue'
                    WHEN i % $4 = 1 THEN 'new_due_soon'
                    WHEN ({u4} * 100) < 3 THEN 'not_counted'
                    WHEN ({u4} * 100) < 11 THEN 'paused'
                    WHEN ({u4} * 100) < 18 THEN 'overdue_flagged'
                    WHEN ({u4} * 100) < 25 THEN 'due_soon_flagged'
                    ELSE 'later' END AS kind
        FROM generate_series($2::bigint, $3::bigint) AS i
    ), timed AS (
        SELECT b.*,
               CASE kind
                   WHEN 'new_overdue' THEN $5::timestamptz - u1 * interval '5 minutes'
                   WHEN 'new_due_soon' THEN $5::timestamptz + (0.01 + 0.98 * u1) * win
                   WHEN 'overdue_flagged'
                       THEN $5::timestamptz - interval '5 minutes' - u1 * interval '20 days'
                   WHEN 'due_soon_flagged' THEN $5::timestamptz + (0.01 + 0.98 * u1) * win
                   WHEN 'paused' THEN $5::timestamptz + (u1 - 0.3) * interval '20 days'
                   WHEN 'later' THEN $6::timestamptz + interval '1 minute' + u1 * interval '30 days'
               END AS due
        FROM base b, LATERAL (SELECT $6::timestamptz - $5::timestamptz AS win) w
    )
    INSERT INTO dossiers ({DOSSIER_INSERT_COLUMNS})
    SELECT $1 || lpad(i::text, 8, '0'),
           ($7::text[])[1 + (i * 7919) % cardinality($7::text[])],
           ($8::text[])[1 + (i * 104729) % cardinality($8::text[])],
           CASE kind WHEN 'not_counted' THEN 1 WHEN 'paused' THEN 5 ELSE 4 END,
           CASE WHEN u3 < 0.5 THEN 1 WHEN u3 < 0.95 THEN 2 ELSE 3 END,
           due - (1 + u2 * 14) * interval '1 day',
           due, due, NULL, NULL, NULL,
           kind <> 'not_counted',
           CASE WHEN kind = 'paused' THEN $5::timestamptz - u2 * interval '5 days' END,
           CASE WHEN kind IN ('not_counted', 'paused') THEN NULL ELSE due END,
           CASE WHEN kind = 'paused' THEN 1 WHEN u3 < 0.1 THEN 1 ELSE 0 END,
           0, '[]'::jsonb, '[]'::jsonb,
           CASE WHEN u2 < 0.75 THEN 1 ELSE 2 END, u3 BETWEEN 0.5 AND 0.8, u1 < 0.5,
           COALESCE(due - (1 + u2 * 14) * interval '1 day',
                    $5::timestamptz - u2 * interval '2 days'),
           LEAST($5::timestamptz, due - (u2 * 7) * interval '1 day'),
           3 + (i % 4)::int,
           CASE WHEN kind = 'overdue_flagged' THEN due + interval '3 minutes' END,
           CASE WHEN kind IN ('new_overdue', 'overdue_flagged') THEN due - interval '1 day'
                WHEN kind = 'due_soon_flagged' THEN $5::timestamptz - u2 * interval '1 day' END
    FROM timed
    """  # noqa: S608 - built from constants only


def month_dossiers_sql() -> str:
    """Dossiers resolved in one month, for score recomputation and the GROUP BY baseline.
    Parameters: $1 prefix, $2 first row, $3 last row, $4 month start, $5 month end,
    $6 unit pool, $7 procedures. Outcomes: 35 % early, 40 % on time, 13 % late, 12 % not
    counted (refused, withdrawn before acceptance)."""
    u1, u2, u3 = _u("i", 2654435761), _u("i", 2246822519), _u("i", 3266489917)
    return f"""
    WITH base AS (
        SELECT i, {u1} AS u1, {u2} AS u2, {u3} AS u3,
               $4::timestamptz + {u1} * ($5::timestamptz - $4::timestamptz) AS finished
        FROM generate_series($2::bigint, $3::bigint) AS i
    )
    INSERT INTO dossiers ({DOSSIER_INSERT_COLUMNS})
    SELECT $1 || lpad(i::text, 8, '0'),
           ($6::text[])[1 + (i * 7919) % cardinality($6::text[])],
           ($7::text[])[1 + (i * 104729) % cardinality($7::text[])],
           CASE WHEN u2 < 0.88 THEN 10 WHEN u2 < 0.94 THEN 3 ELSE 7 END,
           CASE WHEN u3 < 0.5 THEN 1 WHEN u3 < 0.95 THEN 2 ELSE 3 END,
           finished - (1 + u3 * 20) * interval '1 day',
           finished + (u2 - 0.2) * interval '6 days',
           finished + (u2 - 0.2) * interval '6 days',
           finished,
           CASE WHEN u2 < 0.88 THEN 9 WHEN u2 < 0.94 THEN 3 ELSE 7 END,
           CASE WHEN u2 < 0.35 THEN 'early' WHEN u2 < 0.75 THEN 'on_time'
                WHEN u2 < 0.88 THEN 'late' END,
           u2 < 0.88,
           NULL, NULL,
           CASE WHEN u1 < 0.15 THEN 1 ELSE 0 END,
           0, '[]'::jsonb, '[]'::jsonb,
           CASE WHEN u2 < 0.75 THEN 1 ELSE 2 END, u3 BETWEEN 0.5 AND 0.8, u1 < 0.5,
           finished - (1 + u3 * 20) * interval '1 day', finished, 5 + (i % 5)::int,
           NULL, NULL
    FROM base
    """  # noqa: S608 - built from constants only


async def bulk_insert(
    conn: asyncpg.Connection,
    table: str,
    sql: str,
    total: int,
    args: Sequence[Any],
    chunk: int = 250_000,
    progress: Any = None,
) -> None:
    """Insert ``total`` generated rows in chunks with the table's secondary indexes dropped
    and rebuilt afterwards (the index definitions are read from the catalog, so they are the
    migrations' own), then ANALYZE."""
    indexes = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = $1 AND i.schemaname = current_schema() AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        table,
    )
    for row in indexes:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    first = 1
    while first <= total:
        last = min(total, first + chunk - 1)
        await conn.execute(sql, args[0], first, last, *args[1:])
        if progress is not None:
            progress(last, total)
        first = last + 1
    for row in indexes:
        await conn.execute(row["indexdef"])
    await conn.execute(f"ANALYZE {table}")


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The previous calendar month, in Vietnam time, as UTC instants."""
    local = now + VN
    first_this = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first_prev = (first_this - timedelta(days=1)).replace(day=1)
    return (first_prev - VN).replace(tzinfo=UTC), (first_this - VN).replace(tzinfo=UTC)
