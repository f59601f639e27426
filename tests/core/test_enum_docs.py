"""Every enumerated value of the API is named in Vietnamese and English in its OpenAPI document,
from the declarations beside the enums (app/core/vocabulary.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest

from app.core.settings import PROJECT_ROOT
from app.core.vocabulary import named
from app.dossiers.schemas import AnomalyCode


def enumerations(node: object, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if isinstance(node.get("enum") or node.get("x-extensible-enum"), list):
            yield path, node
        for key, child in node.items():
            yield from enumerations(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from enumerations(child, f"{path}/{index}")


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_enumerated_value_has_a_vietnamese_and_an_english_name(
    openapi: dict[str, Any],
) -> None:
    found = list(enumerations(openapi))
    assert len(found) > 30
    bare = []
    for path, node in found:
        values = node.get("enum") or node["x-extensible-enum"]
        names = node.get("x-enum-names", {})
        described = node.get("description", "")
        for value in values:
            name = names.get(str(value), {})
            row = f"| `{value}` | {name.get('vi')} | {name.get('en')} |"
            if (
                not (name.get("vi", "").strip() and name.get("en", "").strip())
                or row not in described
            ):
                bare.append(f"{path}: {value!r}")
            elif node["x-enumDescriptions"][str(value)] != f"{name['vi']} — {name['en']}":
                bare.append(f"{path}: {value!r} (x-enumDescriptions)")
    assert bare == [], "enumerated values without both names:\n" + "\n".join(bare)


async def test_status_channel_and_the_other_named_enums(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    status = schemas["DossierStatus"]
    assert status["x-enum-names"]["5"] == {
        "vi": "Yêu cầu bổ sung giấy tờ",
        "en": "Supplement requested",
    }
    assert status["x-enum-names"]["10"] == {"vi": "Đã trả kết quả", "en": "Result returned"}
    # Integer codes get identifiers for code generators, from the enum's member names.
    assert status["x-enum-varnames"][:3] == ["REGISTERED", "ACCEPTED", "NOT_ACCEPTED"]
    assert schemas["Channel"]["x-enum-names"]["2"] == {"vi": "Trực tuyến", "en": "Online"}
    assert (
        "| `3` | Qua dịch vụ bưu chính công ích | By public postal service |"
        in (schemas["Channel"]["description"])
    )
    assert schemas["UnitLevel"]["x-enum-names"]["commune"]["vi"] == "Xã, phường, đặc khu"
    assert schemas["Scope"]["x-enum-names"]["dossiers:write"]["en"] == "Post dossier events"
    assert schemas["WebhookKind"]["x-enum-names"]["dossier.overdue"]["vi"] == "Hồ sơ quá hạn"
    assert schemas["Timeliness"]["x-enum-names"]["late"] == {"vi": "Trễ hạn", "en": "Late"}
    # Anomaly codes are an open list (new kinds come), named all the same.
    code = schemas["Anomaly"]["properties"]["code"]
    assert "enum" not in code
    assert code["x-enum-names"]["status_after_end"]["en"] == "Status after the dossier ended"
    # A subset shares its vocabulary: one event's result is only ever stored or duplicate.
    result = schemas["EventResult"]["properties"]["result"]
    assert result["x-enum-names"] == {
        "stored": {"vi": "Đã lưu", "en": "Stored"},
        "duplicate": {"vi": "Trùng, không thay đổi gì", "en": "Duplicate: nothing changed"},
    }


async def test_enumerated_query_parameters_show_the_names_where_swagger_ui_reads_them(
    openapi: dict[str, Any],
) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/v1/rankings"]["get"]["parameters"]}
    assert (
        "| `province` | Tỉnh, thành phố trực thuộc trung ương | Province or central city |"
        in (parameters["level"]["description"])
    )
    assert (
        "| `official` | Kết quả công bố chính thức | Official published results |"
        in (parameters["source"]["description"])
    )


def test_every_anomaly_the_timeline_flags_is_named() -> None:
    source = (PROJECT_ROOT / "app" / "dossiers" / "timeline.py").read_text(encoding="utf-8")
    flagged = set(re.findall(r"\bflag\(\s*\"([a-z_]+)\"", source))
    assert len(flagged) >= 8
    assert flagged <= {code.value for code in AnomalyCode}, flagged - set(AnomalyCode)


def test_a_declaration_must_name_every_value_exactly() -> None:
    kind = Literal["a", "b"]
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        named(kind, {"a": ("A", "A")})
    with pytest.raises(ValueError, match=r"unknown \['c'\]"):
        named(kind, {"a": ("A", "A"), "b": ("B", "B"), "c": ("C", "C")})
    with pytest.raises(ValueError, match="a Vietnamese and an English name"):
        named(kind, {"a": ("A", " "), "b": ("B", "B")})
