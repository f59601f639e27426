"""The what-if planner: the cheapest metric improvements that take a unit to a grade, a rank or
a score in a period.

It reads the same snapshots as scores and rankings and scores with the same engine
(:func:`app.indicators.scoring.score`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, Unprocessable
from app.core.language import DEFAULT, Language
from app.core.numbers import share
from app.core.settings import Settings
from app.indicators.catalog import Catalog, CatalogVersion, GradeBand
from app.indicators.periods import Period
from app.indicators.scoring import Counts, Score, score
from app.insights import planner
from app.insights.messages import text
from app.insights.ranking import CENT, RATE, peers_above
from app.insights.schemas import ImprovementOut, StandingOut, TargetOut, WhatIfOut
from app.scores import rankings, refresh
from app.scores import repository as scores_repository
from app.scores.models import ScoreSnapshot
from app.units.service import require_unit

# The three forms of a target, as one pattern for the OpenAPI schema and one per part for the
# messages; ASCII classes only, so Python and the schema's ECMA regexes read them alike.
_KIND = re.compile(r"([Gg][Rr][Aa][Dd][Ee]|[Rr][Aa][Nn][Kk]|[Ss][Cc][Oo][Rr][Ee]):(.*)", re.DOTALL)
_GRADE_VALUE = r" *[^\x00-\x20][^\x00-\x1f]*"
_RANK_VALUE = r" *[0-9]*[1-9][0-9]* *"
_SCORE_VALUE = r" *(?:100(?:\.00?)?|[0-9]{1,2}(?:\.[0-9]{1,2})?) *"
TARGET_PATTERN = (
    f"^(?:[Gg][Rr][Aa][Dd][Ee]:{_GRADE_VALUE}|[Rr][Aa][Nn][Kk]:{_RANK_VALUE}"
    f"|[Ss][Cc][Oo][Rr][Ee]:{_SCORE_VALUE})$"
)
TARGET_FORMS = "grade:Tốt, rank:10 or score:80"


def _bad_target(detail: str) -> Unprocessable:
    return Unprocessable(detail, errors=[{"parameter": "target", "detail": detail}])


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # grade | rank | score
    value: str
    rank: int = 0
    points: Decimal = Decimal(0)


def parse_target(text: str) -> Target:
    """``grade:Tốt`` (a grade band's Vietnamese or English name, or code), ``rank:10`` or
    ``score:80`` (0–100, at most two decimals); anything else is a 422 naming ``target``.
    Accepts exactly :data:`TARGET_PATTERN`."""
    match = _KIND.fullmatch(text)
    if match is None or not re.fullmatch(_GRADE_VALUE, match[2]):
        raise _bad_target(f"target {text!r} must look like {TARGET_FORMS}")
    kind, value = match[1].lower(), match[2].strip(" ")
    if kind == "rank":
        if not re.fullmatch(_RANK_VALUE, match[2]):
            raise _bad_target(f"rank target {value!r} must be a whole number from 1")
        return Target(kind, str(int(value)), rank=int(value))
    if kind == "score":
        if not re.fullmatch(_SCORE_VALUE, match[2]):
            raise _bad_target(
                f"score target {value!r} must be a number from 0 to 100 with at most 2 decimals"
            )
        points = Decimal(value).quantize(CENT)
        return Target(kind, f"{points}", points=points)
    return Target(kind, value)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold().strip()


def grade_band(version: CatalogVersion, name: str) -> GradeBand:
    for band in version.grade_bands:
        if _fold(name) in (_fold(band.name_vi), _fold(band.name_en), _fold(band.code)):
            return band
    names = ", ".join(b.name_vi for b in version.grade_bands)
    raise _bad_target(f"unknown grade {name!r}; one of {names}")


def snapshot_counts(snap: ScoreSnapshot) -> dict[str, Counts]:
    """The counts a snapshot was scored from, keyed like the engine wants them."""
    counts: dict[str, Counts] = {}
    for metric in snap.metrics:
        parts = metric.get("components") or []
        for item in parts or [metric]:
            if item.get("numerator") is not None and item.get("denominator") is not None:
                counts[item["code"]] = Counts(int(item["numerator"]), int(item["denominator"]))
    return counts


def _pct(numerator: int, denominator: int) -> str:
    rate = Decimal(numerator) * 100 / Decimal(denominator)
    return f"{rate.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _improvement(step: planner.Step, lang: Language) -> ImprovementOut:
    lever = step.lever
    c = lever.counts
    action = text(
        lang, "what_if.action", additional=step.additional, numerator=lever.numerator_label,
        denominator=c.denominator, denominator_label=lever.denominator_label,
        rate_from=_pct(c.numerator, c.denominator), rate_to=_pct(step.numerator_to, c.denominator),
    )  # fmt: skip
    return ImprovementOut(
        group_code=lever.group.code,
        metric_code=lever.metric.code,
        component_code=lever.component.code if lever.component else None,
        name=lever.name,
        action=action,
        additional=step.additional,
        numerator_from=c.numerator,
        numerator_to=step.numerator_to,
        denominator=c.denominator,
        rate_from=share(c.numerator, c.denominator),
        rate_to=share(step.numerator_to, c.denominator),
        points_gained=step.points.quantize(CENT, ROUND_HALF_UP),
        points_per_unit=lever.points_per_unit.quantize(RATE, ROUND_HALF_UP),
    )


async def what_if(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    code: str,
    period: Period,
    target_text: str,
    at: datetime,
    lang: Language = DEFAULT,
) -> WhatIfOut:
    target = parse_target(target_text)
    await require_unit(session, code)
    every = await rankings.unit_tree(session)
    unit = next(u for u in every if u.code == code)  # units are never deleted
    await refresh.ensure_refreshed(session, settings, catalog, period, at)
    snaps = await scores_repository.snapshots(session, str(period))
    snap = next((s for s in snaps if s.unit_code == code), None)
    if snap is None:
        raise NotFound(f"Unit {code} has no score for {period} (it did not exist then).")
    version = catalog.version(snap.catalog_version)
    if version is None:
        raise NotFound(f"Catalog version {snap.catalog_version} is no longer shipped.")
    state = await scores_repository.state(session, str(period))
    levels = {u.code: u.level for u in every}
    others = sorted(
        (s.total for s in snaps
         if s.unit_code != code and s.total is not None and levels.get(s.unit_code) == unit.level),
        reverse=True,
    )  # fmt: skip
    counts = snapshot_counts(snap)
    current = score(version, counts)
    ranked_of = len(others) + 1
    standing = StandingOut(
        total=current.total,
        grade=current.grade.name_vi if current.grade else None,
        complete=current.complete,
        rank=1 + peers_above(others, current.total) if current.total is not None else None,
        of=ranked_of if current.total is not None else len(others),
    )

    needed: Decimal | None
    if target.kind == "grade":
        band = grade_band(version, target.value)
        needed = band.min_points.quantize(CENT)
        label = text(lang, "target.grade", value=band.name_vi)
        target = Target("grade", band.name_vi)
    elif target.kind == "rank":
        # Rank r needs at most r − 1 peers strictly above: a total equal to the r-th best other.
        needed = others[target.rank - 1] if target.rank <= len(others) else None
        label = text(lang, "target.rank", value=target.rank)
    else:
        needed = target.points
        label = text(lang, "target.score", value=target.points)

    def answer(reachable: bool, reached: bool, message: str, **extra: Any) -> WhatIfOut:
        values: dict[str, Any] = {
            "improvements": [], "additional_units": 0, "after": None,
            "best_possible_total": None, "missing_metrics": list(current.missing),
            "unmeasured": [], **extra,
        }  # fmt: skip
        return WhatIfOut(
            unit_code=code, name=unit.name, level=unit.level, period=str(period),
            status="closed" if state.status == "closed" else "open",
            catalog_version=version.version,
            target=TargetOut(kind=target.kind, value=target.value, label=label,
                             total_needed=needed),
            current=standing, reachable=reachable, already_reached=reached, message=message,
            method=text(lang, "what_if.method"), **values,
        )  # fmt: skip

    if current.total is None:
        return answer(False, False, text(lang, "what_if.no_data", unit=code, period=period))
    missing = ", ".join(current.missing)
    if target.kind == "grade" and not current.complete:
        return answer(False, False, text(lang, "what_if.no_grade", missing=missing))
    if needed is None or current.total >= needed:
        if target.kind == "rank":
            message = text(
                lang, "what_if.reached_rank", rank=standing.rank, of=ranked_of, total=current.total
            )
        else:
            message = text(
                lang, "what_if.reached_total", total=current.total, needed=needed, label=label
            )
        return answer(True, True, message)

    result = planner.plan(version, counts, needed)
    best = planner.published(result.best_exact)
    if not result.reachable or result.result is None or result.result.total is None:
        message = text(lang, "what_if.beyond", best=best, needed=needed, label=label)
        if current.missing:
            message += text(lang, "what_if.beyond_missing", missing=missing)
        return answer(False, False, message, best_possible_total=best,
                      unmeasured=list(result.unmeasured))  # fmt: skip
    after: Score = result.result
    assert after.total is not None
    improvements = [_improvement(s, lang) for s in result.steps]
    message = text(
        lang, "what_if.reachable", units=result.additional_units, metrics=len(improvements),
        total=current.total, after=after.total, needed=needed, label=label,
    )  # fmt: skip
    return answer(
        True, False, message,
        improvements=improvements,
        additional_units=result.additional_units,
        after=StandingOut(
            total=after.total, grade=after.grade.name_vi if after.grade else None,
            complete=after.complete, rank=1 + peers_above(others, after.total),
            of=ranked_of,
        ),
        best_possible_total=best,
        unmeasured=list(result.unmeasured),
    )  # fmt: skip
