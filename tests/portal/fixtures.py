"""Portal records and progress items in the shapes the two real producers send, unchanged.

Built from the field lists of shared/docs/PORTAL-PROTOCOL.md:

- ``OPENCPS_RECORD``: OpenCPS (Java) — every value a string, ``HinhThuc`` (how the result is
  returned) and no ``KenhThucHien``, papers with file addresses and flags, fees, result papers
  with links, national databases consulted, and the applicant's personal data filled in.
- ``DOTNET_FINISHED`` / ``DOTNET_RETURNED``: a .NET one-stop system — ``MaHoSo`` with the
  unit's identifier as prefix, a local variant of the national procedure code,
  ``DuocThanhToanTrucTuyen`` "3", a terminal status without its end date, ``null`` values, and
  ``DanhSachHoSoBoSung`` typed as its C# classes serialise (``HoSoBoSungId`` an int,
  ``TrangThaiBoSung`` a bool, ``DateTime`` fields as ISO 8601 without zone).
- ``PROGRESS_ITEMS``: ``CapNhatTienDoHoSoMC`` steps of ``DOTNET_FINISHED``'s dossier.

``PERSONAL_VALUES`` lists every personal value the fixtures carry (names, phones, e-mails,
identity numbers, file addresses, who handled a step, free text naming people): none may
appear in anything chiso keeps or returns. Use ``copy.deepcopy`` before changing a fixture.
"""

from __future__ import annotations

from typing import Any

# Units by their electronic identifier (Decision 20/2020/QĐ-TTg) in province H01.
OPENCPS_UNIT = "000.20.31.H01"  # a commune
DOTNET_UNIT = "000.00.12.H01"  # a department

# --- OpenCPS: a birth registration, received at the desk, finished and handed back ------------

OPENCPS_RECORD: dict[str, Any] = {
    "MaHoSo": "000.20.31.H01-261008-0007",
    "MaTTHC": "1.001193",
    "TenTTHC": "Thủ tục đăng ký khai sinh",
    "MaLinhVuc": "G09-TP03",
    "TenLinhVuc": "Hộ tịch",
    "HinhThuc": "0",  # the result is handed over at the desk; OpenCPS sends no KenhThucHien
    "NoiNopHoSo": "1",
    "NgayNopHoSo": "20261008081500",
    "LoaiDoiTuong": "1",
    "ChuHoSo": "Nguyễn Thị Lan",
    "SoDienThoai": "0912345678",
    "Email": "lan.nguyen@example.vn",
    "Fax": "0912345678",  # OpenCPS sends the phone number as Fax too
    "SoGiayToChuHoSo": "079190012345",
    "MaDoiTuong": "CD-079190012345",
    "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "079190012345"}],
    "TrichYeuHoSo": "Đăng ký khai sinh cho con bà Nguyễn Thị Lan",
    "GhiChu": "Gọi chị Lan 0912345678 khi có kết quả",
    "ThongTinKhac": "",
    "ThongTinTra": "",
    "NgayTiepNhan": "20261008083000",  # Thu 8 Oct 2026, 08:30
    "NgayHenTra": "20261009163000",
    "TrangThaiHoSo": "10",
    "NgayKetThucXuLy": "20261009100500",
    "NgayTra": "20261009143000",
    "NgayTuChoi": "",
    "DonViXuLy": "UBND phường Long Xuyên",
    "DuocThanhToanTrucTuyen": "0",
    "HoSoCoThanhPhanSoHoa": "1",
    "TaiKhoanDuocXacThucVoiVNeID": "1",
    "TaiLieuNop": [
        {
            "TepDinhKemId": "88231",
            "TenTepDinhKem": "To khai khai sinh - Nguyen Thi Lan.pdf",
            "IsDeleted": "0",
            "MaThanhPhanHoSo": "TP1",
            "DuongDanTaiTepTin": "https://dvc.angiang.gov.vn/files/88231/to-khai-nguyen-thi-lan.pdf",
            "DuocSoHoa": "1",
            "DuocTaiSuDung": "0",
            "DuocLayTuKhoDMQG": "0",
            "MaKetQuaThayThe": "",
        },
        {
            "TepDinhKemId": "88232",
            "TenTepDinhKem": "Giay chung sinh.pdf",
            "IsDeleted": "0",
            "MaThanhPhanHoSo": "TP2",
            "DuongDanTaiTepTin": "https://dvc.angiang.gov.vn/files/88232/giay-chung-sinh.pdf",
            "DuocSoHoa": "1",
            "DuocTaiSuDung": "1",
            "DuocLayTuKhoDMQG": "1",
            "MaKetQuaThayThe": "KQ-0042",
        },
        {
            # Shown at the desk, not uploaded.
            "TepDinhKemId": "",
            "TenTepDinhKem": "Giấy chứng nhận kết hôn (bản chính)",
            "IsDeleted": "0",
            "MaThanhPhanHoSo": "TP3",
            "DuongDanTaiTepTin": "",
            "DuocSoHoa": "0",
            "DuocTaiSuDung": "0",
            "DuocLayTuKhoDMQG": "0",
            "MaKetQuaThayThe": "",
        },
        {
            # Replaced by TP1 above: deleted, not counted.
            "TepDinhKemId": "88230",
            "TenTepDinhKem": "to khai cu.pdf",
            "IsDeleted": "1",
            "MaThanhPhanHoSo": "TP1",
            "DuongDanTaiTepTin": "https://dvc.angiang.gov.vn/files/88230/to-khai-cu.pdf",
            "DuocSoHoa": "1",
            "DuocTaiSuDung": "1",
            "DuocLayTuKhoDMQG": "1",
            "MaKetQuaThayThe": "",
        },
    ],
    "DanhSachLePhi": [
        {
            "TenPhiLePhi": "Lệ phí đăng ký khai sinh",
            "MaPhiLePhi": "LP01",
            "HinhThucThu": "1",
            "Gia": "0",
            "LoaiPhiLePhi": "1",
        },
        {
            "TenPhiLePhi": "Phí cấp bản sao trích lục",
            "MaPhiLePhi": "P02",
            "HinhThucThu": "1",
            "Gia": "8.000",
            "LoaiPhiLePhi": "2",
        },
    ],
    "DanhSachTepDinhKemKhac": [
        {"TenGiayTo": "Ảnh chụp giấy tờ", "SoLuong": "1", "LoaiGiayTo": "1"}
    ],
    "DanhSachHoSoBoSung": [],
    "DanhSachGiayToKetQua": [
        {
            "TenGiayTo": "Giấy khai sinh (bản chính)",
            "MaThanhPhanHoSo": "KQ1",
            "GiayToId": "KQ-0042",
            "DuongDanTepTinKetQua": "https://dvc.angiang.gov.vn/ketqua/KQ-0042-nguyen-thi-lan.pdf",
        },
        {
            "TenGiayTo": "Trích lục khai sinh (bản sao)",
            "MaThanhPhanHoSo": "KQ2",
            "GiayToId": "KQ-0043",
            "DuongDanTepTinKetQua": "",
        },
    ],
    "DSKetNoiCSDL": [{"MaCSDL": "CSDLQGDC"}, {"MaCSDL": "CSDLHT"}],
}

# --- .NET: a building permit, online, one supplement; finished, end date left empty ----------


DOTNET_FINISHED: dict[str, Any] = {
    "MaHoSo": "000.00.12.H01-261123-48213",
    "MaTTHC": "1.001022.000.00.00.H01",  # the local variant of national 1.001022
    "TenTTHC": "Cấp giấy phép xây dựng nhà ở riêng lẻ",
    "MaLinhVuc": "XD-01",
    "TenLinhVuc": "Hoạt động xây dựng",
    "KenhThucHien": "2",
    "NoiNopHoSo": "2",
    "NgayNopHoSo": "20261122203000",  # submitted online on Sunday evening
    "LoaiDoiTuong": "1",
    "ChuHoSo": "Trần Văn Bình",
    "SoDienThoai": "0987654321",
    "Email": "binh.tran@example.com",
    "Fax": None,
    "SoGiayToChuHoSo": "001085012345",
    "MaDoiTuong": None,
    "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001085012345"}],
    "TrichYeuHoSo": "Xin phép xây nhà 3 tầng của ông Trần Văn Bình",
    "GhiChu": None,
    "ThongTinKhac": None,
    "ThongTinTra": None,
    "NgayTiepNhan": "20261123083000",  # Mon 23 Nov 2026, 08:30
    "NgayHenTra": "20261207170000",
    "TrangThaiHoSo": "9",
    "NgayKetThucXuLy": "",  # finished, says the status; when, the record does not say
    "NgayTra": None,
    "NgayTuChoi": None,
    "DonViXuLy": "Sở Xây dựng tỉnh An Giang",
    "DuocThanhToanTrucTuyen": "3",
    "HoSoCoThanhPhanSoHoa": "0",
    "TaiKhoanDuocXacThucVoiVNeID": None,
    "TaiLieuNop": None,
    "DanhSachLePhi": [
        {
            "TenPhiLePhi": "Lệ phí cấp giấy phép xây dựng",
            "MaPhiLePhi": "LPXD",
            "HinhThucThu": None,
            "Gia": 75000,
            "LoaiPhiLePhi": "1",
        }
    ],
    "DanhSachTepDinhKemKhac": [{"TenGiayTo": "Bản vẽ thiết kế", "SoLuong": 2, "LoaiGiayTo": 1}],
    "DanhSachHoSoBoSung": [
        {
            "HoSoBoSungId": 7731,
            "NguoiYeuCauBoSung": "Lê Văn Cường",
            "NoiDungBoSung": "Bổ sung bản vẽ mặt bằng; đã gọi ông Bình 0987654321",
            "NgayBoSung": "2026-11-25T09:15:00",
            "NguoiTiepNhanBoSung": "Phạm Thị Dung",
            "ThongTinTiepNhan": None,
            "NgayTiepNhanBoSung": "2026-11-27T14:00:00.1234567",
            "TrangThaiBoSung": True,
            "DanhSachGiayToBoSung": [],
            "DanhSachLePhiBoSung": None,
            "NgayHenTraTruoc": "2026-12-07T17:00:00",
            "NgayHenTraMoi": "2026-12-09T17:00:00",
        }
    ],
    "DanhSachGiayToKetQua": None,
    "DSKetNoiCSDL": None,
}

# The same producer's record of another dossier: returned, NgayTra absent altogether.
DOTNET_RETURNED: dict[str, Any] = {
    **{k: v for k, v in DOTNET_FINISHED.items() if k not in ("NgayTra", "DanhSachHoSoBoSung")},
    "MaHoSo": "000.00.12.H01-261124-48377",
    "NgayTiepNhan": "20261124100000",  # Tue 24 Nov 2026, 10:00
    "NgayHenTra": "20261208170000",
    "TrangThaiHoSo": "10",
    "NgayKetThucXuLy": "20261204160000",
    "DanhSachHoSoBoSung": None,
}

# --- progress items of DOTNET_FINISHED's dossier -----------------------------------------------

PROGRESS_ITEMS: list[dict[str, Any]] = [
    {
        "MaHoSo": "000.00.12.H01-261123-48213",
        "NguoiXuLy": "Lê Văn Cường",
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": "20261124093000",
        "PhongBanXuLy": "Phòng Quản lý hoạt động xây dựng",
        "NoiDungXuLy": "Chuyển thẩm định hồ sơ của ông Trần Văn Bình",
        "TrangThai": "4",
        "NgayBatDau": "20261124093000",
        "NgayKetThucTheoQuyDinh": "20261201170000",
    },
    {
        "MaHoSo": "000.00.12.H01-261123-48213",
        "NguoiXuLy": "Phạm Thị Dung",
        "ChucDanh": "Trưởng phòng",
        "ThoiDiemXuLy": "2026-11-26T08:00:00",  # a .NET producer's ISO time
        "PhongBanXuLy": "Phòng Quản lý hoạt động xây dựng",
        "NoiDungXuLy": "Xem xét, trình ký; liên hệ 0987654321",
        "TrangThai": "",
        "NgayBatDau": None,
        "NgayKetThucTheoQuyDinh": None,
    },
    {
        "MaHoSo": "000.00.12.H01-261123-48213",
        "NguoiXuLy": "Nguyễn Văn Đông",
        "ChucDanh": "Phó Giám đốc",
        "ThoiDiemXuLy": "20261204160000",
        "PhongBanXuLy": "Ban Giám đốc",
        "NoiDungXuLy": "Ký duyệt giấy phép",
        "TrangThai": "9",
        "NgayBatDau": "20261204080000",
        "NgayKetThucTheoQuyDinh": "20261204170000",
    },
]

PERSONAL_VALUES: tuple[str, ...] = (
    # owners
    "Nguyễn Thị Lan",
    "Nguyen Thi Lan",
    "nguyen-thi-lan",
    "0912345678",
    "lan.nguyen@example.vn",
    "02963851234",
    "079190012345",
    "Trần Văn Bình",
    "Bình",
    "0987654321",
    "binh.tran@example.com",
    "001085012345",
    # file addresses and names
    "https://",
    "dvc.angiang.gov.vn",
    ".pdf",
    # who handled the dossier, and what they wrote
    "Lê Văn Cường",
    "Phạm Thị Dung",
    "Nguyễn Văn Đông",
    "Chuyên viên",
    "Trưởng phòng",
    "Phó Giám đốc",
    "Chuyển thẩm định",
    "Ký duyệt",
    "bản vẽ",
)


def opencps_call(
    session: str, records: list[dict[str, Any]], updating: bool = False
) -> dict[str, Any]:
    """OpenCPS's ``DongBoHoSoMC`` call body, as its integration code builds it."""
    return {
        "session": session,
        "madonvi": OPENCPS_UNIT,
        "service": "DongBoHoSoMC",
        "isUpdating": "True" if updating else "False",
        "data": records,
    }


def progress_call(session: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``CapNhatTienDoHoSoMC`` call body."""
    return {
        "session": session,
        "madonvi": DOTNET_UNIT,
        "service": "CapNhatTienDoHoSoMC",
        "data": items,
    }
