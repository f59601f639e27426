"""The papers read in one pass (flags as producers nearly always send them) count what the
column-by-column reading counts, and leave every other value to that reading and its notes."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from app.portal import facts
from app.portal.facts import PAPERS, _papers, _plain_papers
from app.portal.simulator import PortalSimulator
from app.portal.values import ValueReader

ODD = [None, "", " ", "1", "0", "2", "true", " 1", 1, 0, True, 2.5, [], {}, "abc"]


def _by_column(raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    with monkeypatch.context() as patched:
        patched.setattr(facts, "_plain_papers", lambda entries: None)
        reader = ValueReader(None)
        return _papers(reader, raw), reader.notes


def _variants() -> list[dict[str, Any]]:
    records = PortalSimulator(dossiers=60, seed=3, units=["H01"]).records
    rng = random.Random(11)
    variants = [r for r in records if r.get(PAPERS)]
    for record in list(variants):
        for _ in range(3):
            changed = copy.deepcopy(record)
            entry = rng.choice(changed[PAPERS])
            entry[rng.choice(sorted(entry))] = copy.deepcopy(rng.choice(ODD))
            variants.append(changed)
    return variants


def test_one_pass_counts_what_the_columns_count(monkeypatch: pytest.MonkeyPatch) -> None:
    read_in_one_pass = 0
    for raw in _variants():
        expected, expected_notes = _by_column(raw, monkeypatch)
        reader = ValueReader(None)
        assert (_papers(reader, raw), reader.notes) == (expected, expected_notes)
        entries = ValueReader(None).entries(raw[PAPERS], PAPERS) or []
        if _plain_papers(entries) is not None:
            read_in_one_pass += 1
            assert not expected_notes  # a value worth a note never takes the one pass
    assert read_in_one_pass > 60  # the simulator's own records, at least


def test_one_pass_by_hand() -> None:
    entries = list(
        enumerate(
            [
                {"IsDeleted": "0", "DuocSoHoa": "1", "DuocTaiSuDung": "1", "TepDinhKemId": "7"},
                {"IsDeleted": "1", "DuocSoHoa": "1", "DuongDanTaiTepTin": "https://x/1.pdf"},
                {"DuocLayTuKhoDMQG": "1", "DuongDanTaiTepTin": "  ", "TepDinhKemId": ""},
                {"IsDeleted": "", "DuocSoHoa": "0", "DuongDanTaiTepTin": "https://x/2.pdf"},
            ]
        )
    )
    # Three kept (the second is deleted); files: the first (an id) and the fourth (a path);
    # digitised: the first; reused: the first; from the national store: the third.
    assert _plain_papers(entries) == (3, 2, 1, 1, 1)
    entries[0][1]["DuocSoHoa"] = 1  # a number: read column by column, as "1", without a note
    assert _plain_papers(entries) is None
    reader = ValueReader(None)
    assert _papers(reader, {PAPERS: [e for _, e in entries]}) == (3, 2, 1, 1, 1)
    assert reader.notes == []
    entries[0][1]["DuocSoHoa"] = "2"  # not a flag: left out, with a note
    assert _plain_papers(entries) is None
    assert _papers(reader, {PAPERS: [e for _, e in entries]}) == (3, 2, 0, 1, 1)
    assert reader.notes == ["TaiLieuNop/0/DuocSoHoa: expected '1', '0' or '', got '2'; ignored"]
