"""The OpenAPI schema states the rules the code enforces, exactly: each pattern the schema
publishes accepts the very texts the code accepts (held together on generated cases, read by a
JSON Schema validator as clients read them), and the requests at each rule's edge get the
answer the schema promises.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import jsonschema_rs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.core.errors import Problem
from app.core.params import DATE_PATTERN, EARLIEST_YEAR, LATEST_YEAR, IsoDate
from app.indicators import periods
from app.indicators.periods import MONTH_PATTERN, PERIOD_PATTERN, Period, PeriodKind
from app.insights.what_if import TARGET_PATTERN, parse_target
from app.procedures.schemas import LIMIT_TEXT_PATTERN, ProcedureIn
from tests.helpers import ADMIN, event, province_with_communes, put_procedure


def _schema_accepts(schema: dict[str, Any], value: object) -> bool:
    return bool(jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value))


def _parses(text: str) -> Period | None:
    try:
        return Period.parse(text)
    except ValueError:
        return None


# Texts near the edges: blanks, other digits, lower case, neighbours of valid values.
near_periods = st.one_of(
    st.from_regex(PERIOD_PATTERN, fullmatch=True),
    st.text(alphabet="012349-Qq \n٢", max_size=9),
    st.builds(
        lambda year, rest, pad: pad + f"{year}{rest}" + pad,
        st.integers(1990, 2110),
        st.sampled_from(["", "-Q0", "-Q1", "-Q4", "-Q5", "-00", "-01", "-12", "-13", "-1"]),
        st.sampled_from(["", " ", "\n"]),
    ),
)


@given(near_periods)
@example("1999")
@example("2100")
@example("2024\n")
@example("٢٠٢٤")
def test_the_period_pattern_is_exactly_what_periods_parse(text: str) -> None:
    assert (_parses(text) is not None) == _schema_accepts(
        {"type": "string", "pattern": PERIOD_PATTERN}, text
    )


@given(near_periods)
def test_the_month_pattern_is_exactly_the_months(text: str) -> None:
    parsed = _parses(text)
    assert (parsed is not None and parsed.kind is PeriodKind.month) == _schema_accepts(
        {"type": "string", "pattern": MONTH_PATTERN}, text
    )


def test_the_period_pattern_spells_the_year_range() -> None:
    assert (periods.EARLIEST_YEAR, periods.LATEST_YEAR) == (2000, 2099)
    assert PERIOD_PATTERN.startswith("^20[0-9]{2}")


_ISO_DATE: TypeAdapter[date] = TypeAdapter(IsoDate)


@given(
    st.one_of(
        st.dates().map(date.isoformat),
        st.builds(
            lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
            st.integers(1890, 2210),
            st.integers(0, 13),
            st.integers(0, 32),
        ),
        st.text(alphabet="0123456789-T ", max_size=12),
    )
)
@example("1899-12-31")
@example("1900-01-01")
@example("2199-12-31")
@example("2200-01-01")
@example("2024-02-30")
def test_the_date_schema_is_exactly_what_dates_accept(text: str) -> None:
    try:
        _ISO_DATE.validate_python(text)
        accepted = True
    except ValidationError:
        accepted = False
    schema = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
    assert accepted == _schema_accepts(schema, text)
    assert (EARLIEST_YEAR, LATEST_YEAR) == (1900, 2199)


def _target_parses(text: str) -> bool:
    try:
        parse_target(text)
        return True
    except Problem:
        return False


@given(
    st.one_of(
        st.builds(
            lambda kind, sep, value: f"{kind}:{sep}{value}",
            st.sampled_from(["grade", "Grade", "RANK", "rank", "score", "ſcore", "level"]),
            st.sampled_from(["", " ", "  "]),
            st.one_of(
                st.text(max_size=6),
                st.decimals(min_value=-1, max_value=1001, places=3).map(str),
                st.integers(-2, 2000).map(str),
                st.sampled_from(["100.00", "100.01", "99.99", "1e1", "010", "0", "Tốt", " "]),
            ),
        ),
        st.text(max_size=12),
    )
)
def test_the_target_pattern_is_exactly_what_the_planner_reads(text: str) -> None:
    assert _target_parses(text) == _schema_accepts(
        {"type": "string", "pattern": TARGET_PATTERN}, text
    )


def _limit_accepted(value: object, unit: str = "working_days") -> bool:
    try:
        ProcedureIn.model_validate({"name": "P", "limit_value": value, "limit_unit": unit})
        return True
    except ValidationError:
        return False


@given(
    st.one_of(
        st.decimals(min_value=-1, max_value=1001, places=3).map(str),
        st.decimals(min_value=0, max_value=1000, places=2).map(lambda d: f"0{d}"),
        st.text(alphabet="0123456789.e+- _", max_size=7),
    )
)
@example("999.00")
@example("999.01")
@example(".5")
@example("0.00")
def test_the_limit_text_pattern_is_exactly_what_procedures_accept(text: str) -> None:
    assert _limit_accepted(text) == _schema_accepts(
        {"type": "string", "pattern": LIMIT_TEXT_PATTERN}, text
    )


@given(
    value=st.one_of(
        st.integers(-5, 100_500).map(lambda cents: cents / 100),
        st.floats(min_value=-1, max_value=1001, allow_nan=False),
        st.integers(-1, 1001),
    ),
    unit=st.sampled_from(["working_days", "working_hours", "calendar_days", "months"]),
)
def test_the_limit_schema_is_exactly_what_procedures_accept(
    value: float, unit: str, procedure_schema: dict[str, Any]
) -> None:
    body = {"name": "P", "limit_value": value, "limit_unit": unit}
    assert _limit_accepted(value, unit) == _schema_accepts(procedure_schema, body)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from pydantic import SecretStr

    from app.core.settings import Settings
    from app.main import create_app

    app = create_app(Settings(environment="test", admin_token=SecretStr("x" * 32)))
    return app.openapi()


@pytest.fixture(scope="module")
def procedure_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    components = openapi["components"]["schemas"]
    return {**components["ProcedureIn"], "components": {"schemas": components}}


# --- what the OpenAPI says ---------------------------------------------------------------------


def _operation(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = openapi["paths"][path][method]
    return operation


def _body(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    schema: dict[str, Any] = _operation(openapi, method, path)["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_batches_state_their_bounds(openapi: dict[str, Any]) -> None:
    portal = _body(openapi, "post", "/v1/portal/dossiers")
    assert (portal["type"], portal["minItems"], portal["maxItems"]) == ("array", 1, 10_000)
    events = _body(openapi, "post", "/v1/dossier-events/batch")
    assert events["required"] == ["events"]
    assert events["properties"]["events"]["maxItems"] == 10_000
    values = _body(openapi, "post", "/v1/indicator-values/batch")
    assert values["required"] == ["values"]
    assert values["properties"]["values"]["maxItems"] == 5_000


def test_every_period_parameter_states_the_period_pattern(openapi: dict[str, Any]) -> None:
    seen = {}
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in ("period", "from", "to") and "calendar" not in path:
                    schema = parameter["schema"]
                    branch = schema["anyOf"][0] if "anyOf" in schema else schema
                    seen[f"{method} {path} {parameter['name']}"] = branch["pattern"]
    assert seen["get /v1/units/{code}/projection period"] == MONTH_PATTERN
    assert seen.pop("get /v1/units/{code}/projection period")
    assert len(seen) >= 10
    assert set(seen.values()) == {PERIOD_PATTERN}, seen
    components = openapi["components"]["schemas"]
    assert components["IndicatorValueIn"]["properties"]["period"]["pattern"] == PERIOD_PATTERN
    assert components["ResolveIn"]["properties"]["period"]["pattern"] == MONTH_PATTERN


def test_counts_state_the_largest_integer_json_carries_exactly(openapi: dict[str, Any]) -> None:
    numerator = openapi["components"]["schemas"]["IndicatorValueIn"]["properties"]["numerator"]
    assert (numerator["minimum"], numerator["maximum"]) == (0, 2**53 - 1)


def test_rules_no_schema_states_are_named(openapi: dict[str, Any]) -> None:
    components = openapi["components"]["schemas"]
    for name in ("DossierEventIn", "UnitIn", "IndicatorValueIn"):
        assert components[name]["x-rules"], name
    assert _operation(openapi, "get", "/v1/calendar")["x-rules"]
    assert _operation(openapi, "get", "/v1/units/{code}/history")["x-rules"]
    assert _operation(openapi, "post", "/v1/periods/{period}/close")["x-rules"]


# --- the answers at each rule's edge -------------------------------------------------------


async def test_an_indicator_count_is_a_json_integer(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    body = {"unit_code": "H01", "period": "2024-Q2", "metric_code": "DOSSIER_SYNC"}
    ok = await client.post(
        "/v1/indicator-values", json={**body, "numerator": 3.0, "denominator": 4}, headers=ADMIN
    )
    assert ok.status_code == 201, ok.text
    assert (ok.json()["numerator"], ok.json()["denominator"]) == (3, 4)
    for bad in ("3", True, 3.5, 2**53):
        refused = await client.post(
            "/v1/indicator-values", json={**body, "numerator": 0, "denominator": bad}, headers=ADMIN
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["errors"][0]["pointer"] == "#/denominator"


async def test_a_fractional_limit_in_calendar_days_is_refused(client: httpx.AsyncClient) -> None:
    # It used to be stored, and every dossier of the procedure then failed to derive (500).
    for unit in ("calendar_days", "months"):
        refused = await client.put(
            "/v1/procedures/P9",
            json={"name": "Thủ tục", "limit_value": 166.06, "limit_unit": unit},
            headers=ADMIN,
        )
        assert refused.status_code == 422, refused.text
        assert f"a limit in {unit} is a whole number" in refused.json()["detail"]
    ok = await client.put(
        "/v1/procedures/P9",
        json={"name": "Thủ tục", "limit_value": "15.00", "limit_unit": "calendar_days"},
        headers=ADMIN,
    )
    assert ok.status_code == 201, ok.text
    assert Decimal(ok.json()["limit_value"]) == Decimal(15)


@pytest.mark.parametrize(
    ("field", "value"),
    [("limit_value", " 3"), ("limit_value", "3e0"), ("has_fees", 0), ("full_online", "true")],
)
async def test_procedure_fields_take_their_json_types_only(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    body = {"name": "Thủ tục", "limit_value": 3, "limit_unit": "working_days", field: value}
    refused = await client.put("/v1/procedures/P9", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == f"#/{field}"


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "4"), ("status", True), ("channel", "1"), ("applicant_kind", "2"),
     ("paid_online", 1), ("has_digitized_parts", "yes")],
)  # fmt: skip
async def test_event_numbers_and_flags_take_their_json_types_only(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3")
    body = {**event("e-1", "H01.01-260302-0001", 4, "2026-03-02 08:00"), field: value}
    refused = await client.post("/v1/dossier-events", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == f"#/{field}"


async def test_integral_numbers_are_integers(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3")
    body = {
        **event("e-1", "H01.01-260302-0001", 4, "2026-03-02 08:00"),
        "status": 4.0,
        "channel": 2.0,
        "applicant_kind": 1.0,
    }
    stored = await client.post("/v1/dossier-events", json=body, headers=ADMIN)
    assert stored.status_code == 202, stored.text


async def test_the_earliest_time_is_the_year_as_written(client: httpx.AsyncClient) -> None:
    # 2000-01-01 00:30 at +01:00 is 1999-12-31 23:30 in UTC: dated 2000, as the schema says.
    await province_with_communes(client)
    await put_procedure(client, "P3")
    body = event("e-1", "H01.01-000101-0001", 1, "2026-03-02 08:00")
    body["occurred_at"] = "2000-01-01T00:30:00+01:00"
    assert (await client.post("/v1/dossier-events", json=body, headers=ADMIN)).status_code == 202
    body = {**body, "event_id": "e-2", "occurred_at": "1999-12-31T23:30:00-01:00"}
    refused = await client.post("/v1/dossier-events", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text


@pytest.mark.parametrize("period", [" 2024", "2024 ", "٢٠٢٤", "2024-q1", "1999"])
async def test_a_period_is_written_exactly(client: httpx.AsyncClient, period: str) -> None:
    response = await client.get(f"/v1/periods/{period}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["parameter"] == "period"


@pytest.mark.parametrize("target", ["score:1e1", "score:+5", "rank:١", " rank:3", "ſcore:5"])
async def test_a_what_if_target_is_written_as_documented(
    client: httpx.AsyncClient, target: str
) -> None:
    await province_with_communes(client)
    response = await client.get(
        "/v1/units/H01/what-if", params={"period": "2026-03", "target": target}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["parameter"] == "target"


@pytest.mark.parametrize("value", [0, "2024-01-01T00:00:00", "1899-12-31"])
async def test_a_unit_date_is_a_date(client: httpx.AsyncClient, value: object) -> None:
    body = {"name": "UBND", "level": "province", "valid_from": value}
    refused = await client.put("/v1/units/H99", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == "#/valid_from"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/api-keys", {"name": "a\x00b", "scopes": ["dossiers:read"]}),
        ("/v1/webhooks", {"url": "https://a.example/h", "unit_code": "H01",
                          "kinds": ["dossier.overdue"], "secret": None}),
    ],
)  # fmt: skip
async def test_text_without_nul_and_urls_without_credentials(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    await province_with_communes(client)
    if path == "/v1/webhooks":
        body = {**body, "url": "https://user:pw@a.example/h"}
    refused = await client.post(path, json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert re.match(r"#/(name|url)$", refused.json()["errors"][0]["pointer"])
