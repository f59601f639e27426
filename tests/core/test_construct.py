"""Models built from checked values (:func:`app.core.construct.constructed`) are the instances
``model_construct`` builds: the same values in field order, the same fields set."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, Field

from app.core.construct import constructed
from app.dossiers.schemas import Channel, DossierEventIn, DossierStatus
from app.portal.schemas import PortalRecordResult

CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (PortalRecordResult, {"index": 3, "MaHoSo": "H01-261120-000001", "result": "stored",
                          "reason": None, "events_stored": 2, "events_updated": 0,
                          "events_duplicate": 1}),
    # Left out: events_updated (default 0), reason and errors (None).
    (PortalRecordResult, {"index": 0, "MaHoSo": None, "result": "quarantined",
                          "events_stored": 0, "events_duplicate": 0}),
    (DossierEventIn, {"event_id": "portal:X-1:2", "dossier_code": "X-1", "unit_code": "H01",
                      "procedure_code": "1.000001", "status": DossierStatus.accepted,
                      "occurred_at": datetime(2026, 11, 20, 3, tzinfo=UTC),
                      "channel": Channel.online}),
]  # fmt: skip


@pytest.mark.parametrize(("model", "values"), CASES)
def test_constructed_is_what_model_construct_builds(
    model: type[BaseModel], values: dict[str, Any]
) -> None:
    built, expected = constructed(model, values), model.model_construct(**values)
    assert type(built) is model
    assert list(built.__dict__.items()) == list(expected.__dict__.items())  # order too
    assert built.model_fields_set == expected.model_fields_set == set(values)
    assert built.model_dump_json(exclude_unset=True) == expected.model_dump_json(exclude_unset=True)
    assert built == expected


def test_a_left_out_field_takes_its_default() -> None:
    result = constructed(PortalRecordResult, CASES[1][1])
    assert (result.events_updated, result.reason, result.errors) == (0, None, None)


def test_instances_share_nothing() -> None:
    first = constructed(PortalRecordResult, CASES[0][1])
    second = constructed(PortalRecordResult, CASES[0][1])
    first.events_stored = 9
    assert second.events_stored == 2


def test_a_mutable_default_is_refused() -> None:
    class Listed(BaseModel):
        items: list[int] = Field(default_factory=list)

    with pytest.raises(AssertionError, match="mutable default"):
        constructed(Listed, {})
