"""Every text the insights write for people, in Vietnamese and English: one catalogue.

A message has an id and a template per language (``str.format`` fields). The answer's language
is the request's ``Accept-Language`` (Vietnamese unless English is asked for:
``app/core/language.py``). Codes (``DOSSIER_SYNC``), grade names (the catalog's Vietnamese
name, as ``target.value`` has it) and numbers (a decimal point, as in the JSON) are the same
in both languages.
"""

from __future__ import annotations

from typing import Any

from app.core.language import Language

MESSAGES: dict[str, tuple[str, str]] = {
    # What-if: the target, as read back.
    "target.grade": ("xếp loại {value}", "grade {value}"),
    "target.rank": ("hạng {value}", "rank {value}"),
    "target.score": ("tổng điểm {value}", "score {value}"),
    # What-if: the answer.
    "what_if.no_data": (
        "Không thể đạt trong kỳ này: {unit} chưa có dữ liệu kỳ {period}.",
        "Unreachable this period: {unit} has no data for {period}.",
    ),
    "what_if.no_grade": (
        "Không thể đạt trong kỳ này: điểm còn thiếu dữ liệu chỉ tiêu {missing} thì chưa được "
        "xếp loại; cần gửi số liệu các chỉ tiêu này trước.",
        "Unreachable this period: a score without data for {missing} gets no grade; submit "
        "them first.",
    ),
    "what_if.reached_rank": (
        "Đã đạt mục tiêu: xếp hạng {rank}/{of} với tổng điểm {total}.",
        "Already reached: ranked {rank} of {of} with {total}.",
    ),
    "what_if.reached_total": (
        "Đã đạt mục tiêu: tổng điểm {total} đạt mức {needed} cần cho {label}.",
        "Already reached: the total {total} meets the {needed} needed for {label}.",
    ),
    "what_if.beyond": (
        "Không thể đạt trong kỳ này: kể cả đạt điểm tối đa ở mọi chỉ tiêu có dữ liệu, tổng "
        "điểm chỉ là {best}, chưa đủ mức {needed} cần cho {label}.",
        "Unreachable this period: even full marks on every metric with data give {best}, "
        "short of the {needed} needed for {label}.",
    ),
    "what_if.beyond_missing": (" Chưa có dữ liệu chỉ tiêu {missing}.", " No data for {missing}."),
    "what_if.reachable": (
        "Có thể đạt: tăng thêm {units} trường hợp đạt yêu cầu ở {metrics} chỉ tiêu, tổng "
        "điểm tăng từ {total} lên {after}, đạt mức {needed} cần cho {label}.",
        "Reachable: {units} more numerator units across {metrics} metric(s) raise the total "
        "from {total} to {after}, meeting the {needed} needed for {label}.",
    ),
    "what_if.action": (
        "Tăng thêm {additional} trường hợp đạt yêu cầu (trên tổng số {denominator}): tỷ lệ "
        "từ {rate_from} lên {rate_to}",
        "{additional} more {numerator} (of {denominator} {denominator_label}): "
        "{rate_from} → {rate_to}",
    ),
    "what_if.method": (
        "Phương án ít tốn nhất là phương án có tổng số trường hợp đạt yêu cầu cần tăng thêm ở "
        "tử số (hồ sơ, thủ tục, lượt đánh giá…) nhỏ nhất. Mỗi chỉ tiêu được cộng điểm tỷ lệ "
        "thuận với tử số cho đến khi đạt điểm tối đa (tỷ lệ 1, ngưỡng của chỉ tiêu, hoặc mức "
        "trần của từng thành phần TTTT; cả nhóm TTTT không vượt quá điểm tối đa của nhóm), nên "
        "lần lượt chọn chỉ tiêu có số điểm trên mỗi trường hợp tăng thêm cao nhất là tối ưu; "
        "số trường hợp là số nguyên nên trường hợp cuối của mỗi chỉ tiêu được làm tròn lên. "
        "Mẫu số giữ nguyên; với mục tiêu thứ hạng, điểm của các đơn vị khác giữ nguyên.",
        "Cheapest = fewest additional numerator units (dossiers, procedures, ratings…) in "
        "total. Each metric earns points linearly in its numerator until full marks (rate 1, "
        "its threshold, or a TTTT component's cap; TTTT as a whole is capped at its maximum), "
        "so taking metrics greedily by points per additional unit is optimal; whole units "
        "round the last unit of each metric up. Denominators stay as they are; other units' "
        "scores are held fixed for rank targets.",
    ),
    # Month-end projections.
    "projection.method": (
        "Điểm TDGQ cuối tháng được dự báo từ hồ sơ hiện có của đơn vị và các đơn vị trực thuộc: "
        "hồ sơ đã giải quyết giữ nguyên kết quả; hồ sơ đang xử lý đã quá hạn tính là trễ hạn; "
        "hồ sơ đang xử lý có hạn sau cuối tháng (hoặc đang tạm dừng tính thời gian) tính là "
        "còn hạn; trong số hồ sơ đến hạn trước cuối tháng, phần dự kiến đúng hạn theo tỷ lệ "
        "đúng hạn của đơn vị với hồ sơ đến hạn trong 3 tháng trước (nếu không có thì của tháng "
        "này đến nay) (mức thấp: không hồ sơ nào, mức cao: tất cả). Hồ sơ sẽ tiếp nhận thêm "
        "bằng số đã tiếp nhận × số ngày làm việc còn lại ÷ số ngày làm việc đã qua, tính là "
        "còn hạn (không tính ở mức thấp). Các chỉ tiêu khác dùng số liệu đã gửi đến nay; thứ "
        "hạng so sánh tổng điểm dự kiến của các đơn vị cùng cấp.",
        "TDGQ at month end from the subtree's dossiers now: finished ones keep their outcome; "
        "open ones already overdue stay late; open ones due after the month (or with a stopped "
        "clock) stay in time; of those coming due before the month ends, the unit's on-time "
        "share of dossiers that came due over the previous 3 months (else this month so far) "
        "is expected in time (low: none, high: all). Receipts still to come are receipts so "
        "far × remaining ÷ elapsed working days, counted in time (left out of the low end). "
        "Other metrics use the submissions so far; ranks compare projected totals of the same "
        "level.",
    ),
}


def text(lang: Language, message: str, **values: Any) -> str:
    """Message ``message`` in ``lang``, its fields filled from ``values``."""
    vi, en = MESSAGES[message]
    return (en if lang == "en" else vi).format(**values)
