"""The papers read in one pass (flags and file fields sent as text) count and note what the
column-by-column reading counts and notes, and leave every other value to that reading."""

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
        patched.setattr(facts, "_plain_papers", lambda entries, reader: None)
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
    read_in_one_pass = noted_in_one_pass = 0
    for raw in _variants():
        expected, expected_notes = _by_column(raw, monkeypatch)
        reader = ValueReader(None)
        assert (_papers(reader, raw), reader.notes) == (expected, expected_notes)
        entries = ValueReader(None).entries(raw[PAPERS], PAPERS) or []
        one_pass = ValueReader(None)
        if _plain_papers(entries, one_pass) is not None:
            read_in_one_pass += 1
            noted_in_one_pass += bool(one_pass.notes)
            assert one_pass.notes == expected_notes
    assert read_in_one_pass > 60  # the simulator's own records, at least
    assert noted_in_one_pass > 10  # "2", "abc": noted by the one pass, in the columns' order


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
    assert _plain_papers(entries, ValueReader(None)) == (3, 2, 1, 1, 1)
    entries[0][1]["DuocSoHoa"] = 1  # a number: read column by column, as "1", without a note
    assert _plain_papers(entries, ValueReader(None)) is None
    reader = ValueReader(None)
    assert _papers(reader, {PAPERS: [e for _, e in entries]}) == (3, 2, 1, 1, 1)
    assert reader.notes == []
    # Not flags: left out, with notes column by column (the third's DuocSoHoa before the
    # first's DuocTaiSuDung), though the one pass meets them entry by entry.
    entries[0][1]["DuocSoHoa"] = " TRUE "  # a flag after all: set, without a note
    entries[0][1]["DuocTaiSuDung"] = "2"
    entries[2][1]["DuocSoHoa"] = "có"
    reader = ValueReader(None)
    assert _plain_papers(entries, reader) == (3, 2, 1, 0, 1)
    assert reader.notes == [
        "TaiLieuNop/2/DuocSoHoa: expected '1', '0' or '', got 'có'; ignored",
        "TaiLieuNop/0/DuocTaiSuDung: expected '1', '0' or '', got '2'; ignored",
    ]
