"""Reading a portal record's index facts (:class:`app.dossiers.facts.DossierFacts`): counts,
totals, flags, codes and dates off the record's lists and fields — never the people (no names,
phones, e-mails, identity numbers, file addresses, nor who handled the dossier).

What cannot be read is left unknown (``None``), with a note: a list field absent or ``null``
leaves its counts unknown, which is not the same as an empty list (zero papers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.dossiers.facts import DossierFacts
from app.portal.values import FLAG_TEXTS, ValueReader, scrubbed, shown

PAPERS = "TaiLieuNop"
FEES = "DanhSachLePhi"
RESULTS = "DanhSachGiayToKetQua"
DATABASES = "DSKetNoiCSDL"

_DATABASE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_TEXT_CHARS = 255  # submitted_where
_CODE_CHARS = 64  # payment_code, result_return: codes stored as sent


def _code_as_sent(reader: ValueReader, value: Any, path: str) -> str | None:
    text = reader.text(value, path)
    if text is None:
        return None
    if len(text) > _CODE_CHARS:
        reader.note(f"{path}: {shown(text)} is longer than {_CODE_CHARS} characters; cut")
    return scrubbed(text[:_CODE_CHARS])


def _count(entries: list[tuple[int, Mapping[str, Any]]], test: Any) -> int:
    return sum(1 for j, entry in entries if test(j, entry))


def _papers(
    reader: ValueReader, raw: Mapping[str, Any]
) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    entries = reader.entries(raw.get(PAPERS), PAPERS)
    if entries is None:
        return None, None, None, None, None
    plain = _plain_papers(entries, reader)
    if plain is not None:
        return plain
    flag = reader.flag

    def is_set(value: Any, j: int, name: str) -> bool:
        """``flag(...) is True``; the path is written only for a value that is not "1"/"0"."""
        if value == "1":  # strings: 1 and True are neither
            return True
        if value == "0":
            return False
        return flag(value, f"{PAPERS}/{j}/{name}") is True

    kept = [
        (j, entry) for j, entry in entries if not is_set(entry.get("IsDeleted"), j, "IsDeleted")
    ]

    # Column by column, in this order: a value that cannot be read is noted in that order.
    def has(name: str) -> int:
        return sum(1 for j, entry in kept if is_set(entry.get(name), j, name))

    def with_file(j: int, entry: Mapping[str, Any]) -> bool:
        for name in ("DuongDanTaiTepTin", "TepDinhKemId"):
            value = entry.get(name)
            if value.strip() if type(value) is str else reader.text(value, f"{PAPERS}/{j}/{name}"):
                return True
        return False

    return (
        len(kept),
        sum(1 for j, entry in kept if with_file(j, entry)),
        has("DuocSoHoa"),
        has("DuocTaiSuDung"),
        has("DuocLayTuKhoDMQG"),
    )


# A flag as producers nearly always send it ("1", "0", or nothing): read without a note.
_PLAIN_FLAG: dict[str | None, bool] = {"1": True, "0": False, None: False, "": False}
# The flags of a paper, in the order the column-by-column reading notes their values.
_FLAG_COLUMNS = ("IsDeleted", "DuocSoHoa", "DuocTaiSuDung", "DuocLayTuKhoDMQG")


class _NotPlain(Exception):
    """A value the one pass leaves to the column-by-column reading."""


def _text_flag(value: Any, column: int, j: int, odd: list[tuple[int, int, str]]) -> bool:
    """A flag sent as other text (``" 1"``, ``"true"``, ``"2"``): set as :meth:`ValueReader.flag`
    reads it; one it cannot read is kept in ``odd`` to be noted in the columns' order."""
    if type(value) is not str:
        raise _NotPlain
    text = value.strip()
    flag = FLAG_TEXTS.get(text.lower()) if text else None
    if text and flag is None:
        odd.append((column, j, value))
    return flag is True


def _plain_papers(
    entries: list[tuple[int, Mapping[str, Any]]], reader: ValueReader
) -> tuple[int, int, int, int, int] | None:
    """:func:`_papers` in one pass, for entries whose flags are text or absent and whose file
    fields are text or absent; ``None`` for any other value, which is then read column by
    column. A flag that is not one is noted as that reading notes it, column by column."""
    total = with_file = digitised = reused = national = 0
    flags = _PLAIN_FLAG
    odd: list[tuple[int, int, str]] = []
    try:
        for j, entry in entries:
            get = entry.get
            flag = flags.get(value := get("IsDeleted"))
            if flag if flag is not None else _text_flag(value, 0, j, odd):
                continue
            total += 1
            flag = flags.get(value := get("DuocSoHoa"))
            digitised += flag if flag is not None else _text_flag(value, 1, j, odd)
            flag = flags.get(value := get("DuocTaiSuDung"))
            reused += flag if flag is not None else _text_flag(value, 2, j, odd)
            flag = flags.get(value := get("DuocLayTuKhoDMQG"))
            national += flag if flag is not None else _text_flag(value, 3, j, odd)
            path, attachment = get("DuongDanTaiTepTin"), get("TepDinhKemId")
            if not (path is None or type(path) is str) or not (
                attachment is None or type(attachment) is str
            ):
                return None
            if (path and path.strip()) or (attachment and attachment.strip()):
                with_file += 1
    except (_NotPlain, TypeError):  # TypeError: a value that is not hashable
        return None
    for column, j, value in sorted(odd):
        reader.flag(value, f"{PAPERS}/{j}/{_FLAG_COLUMNS[column]}")  # its note
    return total, with_file, digitised, reused, national


def _fees(
    reader: ValueReader, raw: Mapping[str, Any]
) -> tuple[int | None, Decimal | None, bool | None]:
    entries = reader.entries(raw.get(FEES), FEES)
    if entries is None:
        return None, None, None
    amounts = [reader.amount(entry.get("Gia"), f"{FEES}/{j}/Gia") for j, entry in entries]
    known = [amount for amount in amounts if amount is not None]
    if any(amount > 0 for amount in known):
        all_zero: bool | None = False
    elif known and len(known) == len(amounts):
        all_zero = True
    else:
        all_zero = None  # no fees listed, or a price left blank: nobody knows
    return len(entries), sum(known, Decimal(0)), all_zero


def _results(reader: ValueReader, raw: Mapping[str, Any]) -> tuple[int | None, int | None]:
    entries = reader.entries(raw.get(RESULTS), RESULTS)
    if entries is None:
        return None, None
    with_file = _count(
        entries,
        lambda j, entry: bool(
            reader.text(entry.get("DuongDanTepTinKetQua"), f"{RESULTS}/{j}/DuongDanTepTinKetQua")
        ),
    )
    return len(entries), with_file


def _databases(reader: ValueReader, raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = raw.get(DATABASES)
    if value is None:
        return None
    if not isinstance(value, list):
        reader.entries(value, DATABASES)  # notes the wrong type
        return None
    codes: list[str] = []
    for j, entry in enumerate(value):
        # Producers send [{"MaCSDL": "..."}]; a bare list of codes means the same.
        listed = type(entry) is dict or isinstance(entry, Mapping)
        path = f"{DATABASES}/{j}/MaCSDL" if listed else f"{DATABASES}/{j}"
        code = reader.text(entry.get("MaCSDL") if listed else entry, path)
        if code is None:
            continue
        if not _DATABASE_CODE.fullmatch(code):
            reader.note(f"{path}: {shown(code)} is not a code; ignored")
        elif code not in codes:
            codes.append(code)
    return tuple(codes)


def read_facts(raw: Mapping[str, Any], reader: ValueReader) -> DossierFacts:
    """The index facts of one record; what cannot be read is left unknown, with a note."""
    papers_total, with_file, digitised, reused, national = _papers(reader, raw)
    fees_count, fees_total, fees_all_zero = _fees(reader, raw)
    results_total, results_with_file = _results(reader, raw)
    where = reader.text(raw.get("NoiNopHoSo"), "NoiNopHoSo")
    return DossierFacts(
        papers_total=papers_total,
        papers_with_file=with_file,
        papers_digitised=digitised,
        papers_reused=reused,
        papers_from_national_store=national,
        fees_count=fees_count,
        fees_total=fees_total,
        fees_all_zero=fees_all_zero,
        results_total=results_total,
        results_with_file=results_with_file,
        databases=_databases(reader, raw),
        vneid_verified=reader.flag(
            raw.get("TaiKhoanDuocXacThucVoiVNeID"), "TaiKhoanDuocXacThucVoiVNeID"
        ),
        has_digitised_parts=reader.flag(raw.get("HoSoCoThanhPhanSoHoa"), "HoSoCoThanhPhanSoHoa"),
        submitted_where=scrubbed(where)[:_TEXT_CHARS] if where else None,
        submitted_at=reader.time(raw.get("NgayNopHoSo"), "NgayNopHoSo"),
        refused_at=reader.time(raw.get("NgayTuChoi"), "NgayTuChoi"),
        payment_code=_code_as_sent(
            reader, raw.get("DuocThanhToanTrucTuyen"), "DuocThanhToanTrucTuyen"
        ),
        result_return=_code_as_sent(reader, raw.get("HinhThuc"), "HinhThuc"),
        applicant_kind=reader.small_int(raw.get("LoaiDoiTuong"), "LoaiDoiTuong"),
    )
