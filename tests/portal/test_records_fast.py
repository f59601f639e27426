"""Records read on the fast path: the same events validation would build, refused the same way
when validation refuses them, and the store's unit checks allowed to hash for a batch."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.dossiers.schemas import Channel, DossierEventIn, DossierStatus
from app.portal.progress import progress_to_events
from app.portal.records import PortalRecordError, records_to_events
from app.portal.values import ValueReader
from tests.portal.fixtures import DOTNET_FINISHED, OPENCPS_RECORD, PROGRESS_ITEMS

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ARRIVED = datetime.fromisoformat("2026-10-25T10:00:00+07:00")


def _validated(event: DossierEventIn) -> DossierEventIn:
    return DossierEventIn(**{name: getattr(event, name) for name in event.model_fields_set})


@pytest.mark.parametrize("raw", [OPENCPS_RECORD, DOTNET_FINISHED], ids=["opencps", "dotnet"])
def test_events_read_are_those_validation_builds(raw: dict[str, Any]) -> None:
    events = records_to_events(copy.deepcopy(raw), 0, None, ARRIVED).events
    assert events
    for event in events:
        again = _validated(event)
        assert event == again
        assert event.model_fields_set == again.model_fields_set
        assert event.model_dump_json() == again.model_dump_json()


def test_the_opencps_record_gives_its_hand_read_events() -> None:
    events = records_to_events(copy.deepcopy(OPENCPS_RECORD), 0, None, ARRIVED).events
    first = events[0]
    # Received 2026-10-08 08:30 at the desk (no KenhThucHien: in person), unit from MaHoSo.
    assert first.event_id == "portal:000.20.31.H01-261008-0007:2"
    assert first.status is DossierStatus.accepted
    assert first.channel is Channel.in_person
    assert first.unit_code == "000.20.31.H01"
    assert first.occurred_at == datetime(2026, 10, 8, 8, 30, tzinfo=VN)
    assert first.model_fields_set == {
        "event_id", "dossier_code", "unit_code", "procedure_code", "status", "occurred_at",
        "channel", "due_at", "received_at", "supplement_supplied_at", "supplement_new_due_at",
        "applicant_kind", "paid_online", "has_digitized_parts",
    }  # fmt: skip
    assert first.note is None and first.fee_paid_at is None and first.papers_total is None


def test_a_time_validation_refuses_is_refused_with_its_words() -> None:
    """A record that arrived long before it is read (a kept record released years later)
    passes the reader's horizon but not the event's range: validation words the refusal."""
    raw = copy.deepcopy(OPENCPS_RECORD)
    raw["NgayHenTra"] = "20290101080000"  # within two years of the arrival, not of now + 2 y
    long_ago = datetime(2027, 6, 1, tzinfo=UTC)  # arrival, so that the horizon lets 2029 in
    now = datetime.now(UTC)
    if datetime(2029, 1, 1, 1, tzinfo=UTC) < now.replace(year=now.year + 2):
        pytest.skip("the appointment is within two years of today: nothing to refuse")
    with pytest.raises(PortalRecordError) as caught:
        records_to_events(raw, 3, None, long_ago)
    assert caught.value.errors == [
        {
            "pointer": "#/3/NgayHenTra",
            "detail": "due_at: Value error, date out of range (from 2000-01-01 to two years "
            "from now)",
        }
    ]


def test_a_progress_item_is_the_event_validation_builds() -> None:
    item = copy.deepcopy(PROGRESS_ITEMS[0])
    parsed = progress_to_events(item, 0, "000.20.31.H01", "1.001193", Channel.online)
    (event,) = parsed.events
    assert event == _validated(event)
    assert event.model_fields_set == {
        "event_id", "dossier_code", "unit_code", "procedure_code", "status", "occurred_at",
        "channel",
    }  # fmt: skip
    assert event.channel is Channel.online and event.unit_code == "000.20.31.H01"


def test_flags_and_times_read_on_the_usual_path_as_on_the_other() -> None:
    reader = ValueReader(horizon=None)
    assert [reader.flag(v, "F") for v in ("1", "0", " 1 ", "true", 1, True, "")] == [
        True, False, True, True, True, True, None,
    ]  # fmt: skip
    assert reader.flag("2", "F") is None
    assert reader.notes == ["F: expected '1', '0' or '', got '2'; ignored"]
    # The same text read twice (remembered) and a bad one read twice: the same answers.
    for _ in range(2):
        assert reader.time("20261008083000", "A") == datetime(2026, 10, 8, 8, 30, tzinfo=VN)
        assert reader.time("20261308083000", "B") is None
    assert reader.problems["B"].startswith("'20261308083000' is not a real date and time")
