"""The administrative divisions chiso ships: the 34 provinces and their communes.

Provinces come from ``reference/provinces-2026.csv`` (the portal's ``H..`` codes and names).
Communes (xã, phường, đặc khu) come from the statistics office's list as packaged by
``vietnam-provinces``; ``reference/provinces-gso.csv`` matches each province's statistics-office
code to its ``H..`` code. A commune's code is ``{province H code}.{5-digit statistics-office
code}``, e.g. ``H26.00004`` (Phường Ba Đình, Hà Nội). See docs/UNITS.md.

Loading is set-based (a few statements for all 3,321 communes), idempotent and never deletes:
a commune a newer list no longer has is closed (``valid_to``), one that moved to another
province is closed with the new one as its successor, a renamed one keeps its code and the
rename is written to the audit log with its date.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import vietnam_provinces
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_provinces import Province, Ward

from app.audit import service as audit
from app.core import events
from app.core.errors import Conflict, Unprocessable
from app.units import repository
from app.units.service import PROVINCES_CSV, REFERENCE_DIR, load_units_csv

PROVINCE_GSO_CSV = REFERENCE_DIR / "provinces-gso.csv"
# The 2025 reorganisation (34 provinces, no districts, 3,321 communes) took effect on this day:
# the communes of a first load are valid from it.
REORGANISATION = date(2025, 7, 1)
# The codes this loader owns: a commune it created is closed when a newer list drops it.
# Units of any other form (a desk, a department, a commune an admin typed in) are never touched.
COMMUNE_CODE_SQL_PATTERN = "^H[0-9]{2}[.][0-9]{5}$"
_ACTOR = "chiso reference"


def commune_code(province_code: str, gso_code: int | str) -> str:
    """``H26`` and statistics-office code 4 → ``H26.00004``."""
    return f"{province_code}.{int(gso_code):05d}"


def clean_name(name: str) -> str:
    """The list's name with runs of spaces made one (it has ``Xã  Bắc Đông Quan``)."""
    return " ".join(name.split())


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    name: str
    province_code: str
    gso_code: str


@dataclass(frozen=True, slots=True)
class Divisions:
    """One release of the statistics office's list, in chiso's codes."""

    source: str  # e.g. "vietnam-provinces 2025.10.1 (data of 2025-10-18)"
    data_date: date  # when the list was taken: changes found in it are dated by default
    provinces: dict[str, str]  # statistics-office province code ("01") → H code ("H26")
    communes: tuple[Commune, ...]


def province_gso_codes(text_: str | None = None) -> dict[str, str]:
    """``{statistics-office code: H code}`` from ``provinces-gso.csv``."""
    if text_ is None:
        text_ = PROVINCE_GSO_CSV.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text_)))
    mapping = {f"{int(r['gso_code']):02d}": r["code"].strip() for r in rows}
    if len(mapping) != len(rows) or len(set(mapping.values())) != len(rows):
        raise ValueError(f"{PROVINCE_GSO_CSV.name}: a code is listed twice")
    return mapping


@functools.cache
def shipped_divisions() -> Divisions:
    """The installed ``vietnam-provinces`` release, every commune under its province's H code."""
    provinces = province_gso_codes()
    return build_divisions(
        source=f"vietnam-provinces {vietnam_provinces.__version__} "
        f"(data of {vietnam_provinces.__data_version__})",
        data_date=date.fromisoformat(vietnam_provinces.__data_version__),
        provinces=provinces,
        package_provinces=((f"{int(p.code):02d}", p.name) for p in Province.iter_all()),
        wards=((int(w.code), w.name, f"{int(w.province_code):02d}") for w in Ward.iter_all()),
    )


def build_divisions(
    *,
    source: str,
    data_date: date,
    provinces: dict[str, str],
    package_provinces: Iterable[tuple[str, str]],
    wards: Iterable[tuple[int, str, str]],
) -> Divisions:
    """Communes in chiso's codes; refuses a list with a province ``provinces`` does not match
    to an H code (a new province needs its portal code first) or a commune code twice."""
    unmatched = sorted(f"{c} {name}" for c, name in package_provinces if c not in provinces)
    if unmatched:
        raise Unprocessable(
            f"{PROVINCE_GSO_CSV.name} gives no portal H code for province(s) "
            f"{', '.join(unmatched)} of {source}"
        )
    communes: dict[str, Commune] = {}
    for gso, name, province in wards:
        if province not in provinces:
            raise Unprocessable(f"commune {gso} of {source} lies in unknown province {province}")
        code = commune_code(provinces[province], gso)
        if code in communes:
            raise Unprocessable(f"commune {gso} is listed twice in {source}")
        communes[code] = Commune(code, clean_name(name), provinces[province], f"{gso:05d}")
    ordered = tuple(communes[code] for code in sorted(communes))
    return Divisions(source, data_date, dict(provinces), ordered)


@dataclass(frozen=True, slots=True)
class CommunesLoaded:
    source: str
    listed: int
    created: list[str]
    changed: list[str]  # renamed (or put back under their province, or made communes again)
    closed: list[str]  # open here, absent from the list: valid_to set
    listed_but_closed: list[str]  # in the list, yet closed here (an admin's call: left closed)
    released: list[str]  # codes portal records waited for: their release is queued

    def summary(self) -> str:
        parts = [
            f"{self.listed} communes from {self.source}: {len(self.created)} created",
            f"{len(self.changed)} renamed",
            f"{len(self.closed)} closed",
        ]
        line = ", ".join(parts)
        if self.listed_but_closed:
            line += (
                f"; {len(self.listed_but_closed)} listed but closed here, left closed "
                f"({', '.join(self.listed_but_closed[:5])}"
                f"{', ...' if len(self.listed_but_closed) > 5 else ''})"
            )
        if self.released:  # the worker ingests them (the outbox relay runs every minute)
            line += f"; portal records waiting for {len(self.released)} of them are released"
        return line


async def load_divisions(
    session: AsyncSession,
    divisions: Divisions | None = None,
    *,
    effective: date | None = None,
) -> tuple[int, CommunesLoaded]:
    """The 34 provinces, then the communes: ``(provinces changed, what the communes did)``."""
    await repository.lock_reference_load(session)  # two loads at once: one waits
    provinces = await load_units_csv(session, PROVINCES_CSV.read_text(encoding="utf-8-sig"))
    communes = await load_communes(session, divisions, effective=effective)
    return len(provinces), communes


async def load_communes(
    session: AsyncSession,
    divisions: Divisions | None = None,
    *,
    effective: date | None = None,
) -> CommunesLoaded:
    """Upsert the list's communes and close those it dropped, in the caller's transaction.

    ``effective`` dates what this load finds changed (default: the day the list was taken):
    a dropped commune is valid until the day before; a new one is valid from that day, except
    on a first load, whose communes are the 2025 reorganisation's (valid from 1 July 2025).
    """
    await repository.lock_reference_load(session)
    divisions = divisions or shipped_divisions()
    when = effective or divisions.data_date
    provinces = sorted(set(divisions.provinces.values()))
    missing = sorted(set(provinces) - await repository.existing_codes(session, provinces))
    if missing:
        raise Unprocessable(f"the communes' provinces {', '.join(missing)} are not loaded")
    codes = [c.code for c in divisions.communes]
    await _refuse_identifier_clashes(session, codes)
    # Quarantined portal records naming one of these codes are released below: serialise with
    # their quarantining (a few dozen lock buckets, whatever the number of codes).
    await repository.lock_tokens(session, codes)
    first = not await repository.any_unit_matches(session, COMMUNE_CODE_SQL_PATTERN)
    written = await repository.upsert_communes(
        session,
        codes=codes,
        names=[c.name for c in divisions.communes],
        parents=[c.province_code for c in divisions.communes],
        valid_from=REORGANISATION if first else when,
    )
    closed = await repository.close_communes_not_in(
        session, pattern=COMMUNE_CODE_SQL_PATTERN, listed=codes, effective=when
    )
    dated = {"effective": when, "source": divisions.source}
    changed = [w for w in written if not w.created]
    for row in changed:
        await audit.record(
            session, _ACTOR, "unit.reference.change", row.code, unit_code=row.code,
            before={"name": row.old_name, "level": row.old_level, "parent_code": row.old_parent},
            after={"name": row.name, "level": row.level, "parent_code": row.parent_code, **dated},
        )  # fmt: skip
    for row in closed:
        await audit.record(
            session, _ACTOR, "unit.reference.close", row.code, unit_code=row.code,
            before={"valid_to": None, "successor_code": row.old_successor},
            after={"valid_to": row.valid_to, "successor_code": row.successor_code, **dated},
        )  # fmt: skip
    created = sorted(w.code for w in written if w.created)
    if created:
        await repository.analyze(session)  # the table may have grown a hundredfold
    # Portal records that waited for one of the new codes (the portal's quarantine hears it).
    answers = await events.publish(session, events.IdentifiersMapped(tokens=frozenset(created)))
    released = sorted({token for answer in answers for token in answer})
    loaded = CommunesLoaded(
        source=divisions.source,
        listed=len(codes),
        created=created,
        changed=sorted(r.code for r in changed),
        closed=sorted(r.code for r in closed),
        listed_but_closed=await repository.closed_among(session, codes),
        released=released,
    )
    if created or changed or closed:
        await audit.record(
            session, _ACTOR, "unit.reference.load", divisions.source,
            after={"created": len(created), "changed": len(changed), "closed": len(closed),
                   **dated},
        )  # fmt: skip
    return loaded


async def _refuse_identifier_clashes(session: AsyncSession, codes: list[str]) -> None:
    """A commune's code must not be another unit's identifier: a portal record naming it would
    then mean either unit."""
    holders = await repository.identifier_holders(session, codes)
    if holders:
        first = holders[0]
        raise Conflict(
            f"Identifier {first.identifier!r} of unit {first.code} ({first.name}) is the code of "
            "a shipped commune; change or clear it there first.",
            errors=[
                {"pointer": f"/units/{h.code}/identifier",
                 "detail": f"{h.identifier!r} is a commune's code"}
                for h in holders
            ],
            unit_code=first.code,
        )  # fmt: skip
