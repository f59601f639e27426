"""Data-integrity rules as data: thresholds from ``integrity-rules.yaml``, validated at start-up.

The insights router's lifespan loads the file, so a malformed rule stops the service instead
of flagging (or missing) data silently. The worker loads the same file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.calendar.workdays import LimitUnit

RULES_FILE = Path(__file__).parent / "integrity-rules.yaml"

Label = Annotated[str, Field(min_length=1, max_length=300)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]


class RulesDataError(ValueError):
    """The rules file cannot be trusted: bad YAML or a bad field."""


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title_vi: Label
    title_en: Label
    enabled: bool = True
    # A unit is flagged only when at least this many dossiers trip the rule in the month.
    min_dossiers: Count = 1


class QuickFinish(_Rule):
    max_minutes: Annotated[int, Field(ge=1, le=24 * 60)]
    limit_units: Annotated[tuple[LimitUnit, ...], Field(min_length=1)]
    min_limit_days: Annotated[float, Field(gt=0, le=999)] = 1


class ReceiptAfterLaterSteps(_Rule):
    tolerance_minutes: Annotated[int, Field(ge=0, le=30 * 24 * 60)]


class LastDayCloses(_Rule):
    factor: Annotated[float, Field(gt=1, le=100)]
    baseline_periods: Annotated[int, Field(ge=1, le=12)]


class OnlineInPersonOnly(_Rule):
    pass


class LateEvents(_Rule):
    max_delay_hours: Annotated[int, Field(ge=1, le=24 * 366)]
    sources: Annotated[tuple[Literal["api", "portal", "sync"], ...], Field(min_length=1)]


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quick_finish: QuickFinish
    receipt_after_later_steps: ReceiptAfterLaterSteps
    last_day_closes: LastDayCloses
    online_in_person_only: OnlineInPersonOnly
    late_events: LateEvents

    def title(self, code: str) -> str:
        rule: _Rule = getattr(self, code)
        return rule.title_en

    def title_vi(self, code: str) -> str:
        rule: _Rule = getattr(self, code)
        return rule.title_vi


class RulesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[int, Field(ge=1)]
    rules: Rules


RULE_CODES = tuple(Rules.model_fields)


def parse_rules(text: str, source: str = "<string>") -> Rules:
    try:
        return RulesFile.model_validate(yaml.safe_load(text)).rules
    except yaml.YAMLError as exc:
        raise RulesDataError(f"{source}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise RulesDataError(f"{source}: invalid integrity rules:\n{exc}") from exc


@cache
def shipped_rules() -> Rules:
    """The rules shipped with the service (read once; the models are immutable)."""
    return parse_rules(RULES_FILE.read_text(encoding="utf-8"), str(RULES_FILE))
