"""Integrity rules are data: the shipped file loads, a malformed one is refused with its cause."""

from __future__ import annotations

import pytest

from app.insights.rules import RULE_CODES, RULES_FILE, RulesDataError, parse_rules, shipped_rules


def test_shipped_rules_load_with_their_thresholds() -> None:
    rules = shipped_rules()
    assert RULE_CODES == ("quick_finish", "receipt_after_later_steps", "last_day_closes",
                          "online_in_person_only", "late_events")  # fmt: skip
    assert (rules.quick_finish.max_minutes, rules.receipt_after_later_steps.tolerance_minutes) == (
        5, 60,
    )  # fmt: skip
    assert (rules.last_day_closes.factor, rules.last_day_closes.min_dossiers) == (3, 10)
    assert (rules.late_events.max_delay_hours, rules.late_events.sources) == (72, ("api", "portal"))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (("factor: 3", "factor: 1"), "greater than 1"),
        (("max_minutes: 5", "max_minutes: 5\n    max_seconds: 2"), "max_seconds"),
        (("limit_units: [working_days, calendar_days, months]", "limit_units: [fortnights]"),
         "limit_units"),
        (("sources: [api, portal]", "sources: [fax]"), "sources"),
        (("version: 1", "version: [1"), "not valid YAML"),
    ],
)  # fmt: skip
def test_a_malformed_rules_file_is_refused(change: tuple[str, str], complaint: str) -> None:
    text = RULES_FILE.read_text(encoding="utf-8")
    assert change[0] in text
    with pytest.raises(RulesDataError, match=complaint):
        parse_rules(text.replace(change[0], change[1], 1), "rules.yaml")
