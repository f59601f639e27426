"""Every endpoint × every kind of caller, with the exact status each one gets.

Kinds: no key, a desk key of unit A, a desk key of unit B, a read-only key, the admin token,
and a revoked key. A new endpoint fails this test until it is added to the matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import ADMIN
from tests.security.conftest import DOSSIER_A, UNIT_A, World

# Admin last: the one call that may consume something (a DELETE) comes after the refusals.
KINDS = ("none", "desk_a", "desk_b", "read_only", "revoked", "admin")


def operations() -> dict[str, int]:
    """Probes for orchestrators: whoever asks, whatever the header."""
    return dict.fromkeys(KINDS, 200)


def public(status: int = 200) -> dict[str, int]:
    """Public endpoints: anyone, but a key that is sent must be valid (a revoked one is 401)."""
    return {**dict.fromkeys(KINDS, status), "revoked": 401}


def keyed(desk_a: int, desk_b: int, read_only: int, admin: int) -> dict[str, int]:
    """Endpoints that authenticate: no key and a revoked key are 401."""
    return {"none": 401, "revoked": 401, "desk_a": desk_a, "desk_b": desk_b,
            "read_only": read_only, "admin": admin}  # fmt: skip


def admin_only(status: int = 200) -> dict[str, int]:
    return keyed(403, 403, 403, status)


Body = Callable[[str, World], Any]


@dataclass
class Case:
    method: str
    template: str  # the OpenAPI path
    expect: dict[str, int]
    path: Callable[[World], str] | None = None
    body: Body | None = None
    params: dict[str, str] = field(default_factory=dict)
    # The national portal's protocol answers HTTP 200 with its own `error_code`: expected here.
    codes: dict[str, int] | None = None


def _event(kind: str, _: World) -> dict[str, Any]:
    return {
        "event_id": f"matrix-{kind}", "dossier_code": DOSSIER_A, "unit_code": UNIT_A,
        "procedure_code": "P3", "status": 4, "occurred_at": "2026-03-03T09:00:00+07:00",
        "channel": 1,
    }  # fmt: skip


def _value(kind: str, _: World) -> dict[str, Any]:
    numerator = KINDS.index(kind) + 1  # a new revision for every caller allowed to submit
    return {"unit_code": UNIT_A, "period": "2024-04", "metric_code": "DOSSIER_SYNC",
            "numerator": numerator, "denominator": 50}  # fmt: skip


def _record(kind: str, _: World) -> list[dict[str, str]]:
    return [{
        "MaHoSo": f"H01.01-260302-9{KINDS.index(kind)}", "MaTTHC": "P3", "KenhThucHien": "1",
        "NgayTiepNhan": "20260302080000", "TrangThaiHoSo": "2", "MaDonVi": UNIT_A,
    }]  # fmt: skip


def portal() -> dict[str, int]:
    """The national portal's protocol: HTTP 200 whoever asks; the envelope's code says."""
    return dict.fromkeys(KINDS, 200)


def _lgsp_record(kind: str, world: World) -> list[dict[str, str]]:
    return [{k: v for k, v in _record(kind, world)[0].items() if k != "MaDonVi"}]


def _progress(kind: str, _: World) -> list[dict[str, str]]:
    return [{"MaHoSo": DOSSIER_A, "ThoiDiemXuLy": "20260303100000", "TrangThai": "4"}]


# error_code per caller: 0 done, 1 a record refused (outside the key's unit), 2 no valid
# credentials, 3 wrong login, 4 the key lacks the scope.
PORTAL_WRITE = {"none": 2, "revoked": 2, "desk_a": 0, "desk_b": 1, "read_only": 4, "admin": 0}


def _webhook(kind: str, _: World) -> dict[str, Any]:
    return {"url": f"https://{kind.replace('_', '-')}.example/hook", "unit_code": UNIT_A,
            "kinds": ["dossier.overdue"]}  # fmt: skip


CASES = [
    Case("GET", "/healthz", operations()),
    Case("GET", "/readyz", operations()),
    Case("GET", "/v1/units", public()),
    Case("GET", "/v1/units/{code}", public(), path=lambda w: f"/v1/units/{UNIT_A}"),
    Case("PUT", "/v1/units/{code}", admin_only(200), path=lambda w: f"/v1/units/{UNIT_A}",
         body=lambda k, w: {"name": "UBND phường Long Xuyên", "level": "commune",
                            "parent_code": "H01"}),
    Case("GET", "/v1/procedures", public()),
    Case("GET", "/v1/procedures/{code}", public(), path=lambda w: "/v1/procedures/P3"),
    Case("PUT", "/v1/procedures/{code}", admin_only(200), path=lambda w: "/v1/procedures/P3",
         body=lambda k, w: {"name": "Thủ tục P3", "limit_value": 3,
                            "limit_unit": "working_days"}),
    Case("POST", "/v1/api-keys", admin_only(201),
         body=lambda k, w: {"name": "new", "scopes": ["dossiers:read"]}),
    Case("GET", "/v1/api-keys", admin_only()),
    Case("DELETE", "/v1/api-keys/{key_id}", admin_only(),
         path=lambda w: f"/v1/api-keys/{w.spare_key_id}"),
    Case("GET", "/v1/calendar", public(), params={"from": "2026-01-01", "to": "2026-01-31"}),
    Case("GET", "/v1/calendar/days/{day}", public(), path=lambda w: "/v1/calendar/days/2026-12-31"),
    Case("PUT", "/v1/calendar/days/{day}", admin_only(),
         path=lambda w: "/v1/calendar/days/2026-12-31",
         body=lambda k, w: {"kind": "holiday", "reason": "matrix"}),
    Case("DELETE", "/v1/calendar/days/{day}", admin_only(204),
         path=lambda w: "/v1/calendar/days/2026-12-31"),
    # Outside the key's unit the single-event endpoint answers 403 (with the item's error,
    # pointer #/unit_code), as indicator values do; batches answer 200 with the item rejected.
    Case("POST", "/v1/dossier-events", keyed(202, 403, 403, 202), body=_event),
    Case("POST", "/v1/dossier-events/batch", keyed(200, 200, 403, 200),
         body=lambda k, w: {"events": [_event(f"batch-{k}", w)]}),
    Case("GET", "/v1/dossiers/{code}", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/dossiers/{DOSSIER_A}"),
    Case("GET", "/v1/dossiers/{code}/events", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/dossiers/{DOSSIER_A}/events"),
    Case("GET", "/v1/dossiers", keyed(200, 403, 200, 200), params={"unit": UNIT_A}),
    Case("GET", "/v1/units/{code}/overdue", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/units/{UNIT_A}/overdue"),
    Case("GET", "/v1/units/{code}/overdue-counts", public(),
         path=lambda w: f"/v1/units/{UNIT_A}/overdue-counts"),
    Case("GET", "/v1/units/{code}/due-soon", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/units/{UNIT_A}/due-soon"),
    Case("GET", "/v1/indicators", public()),
    Case("POST", "/v1/indicator-values", keyed(201, 403, 403, 201), body=_value),
    Case("POST", "/v1/indicator-values/batch", keyed(200, 200, 403, 200),
         body=lambda k, w: {"values": [_value(k, w) | {"period": "2024-05"}]}),
    Case("GET", "/v1/units/{code}/indicator-values", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/units/{UNIT_A}/indicator-values"),
    Case("POST", "/v1/portal/dossiers", keyed(200, 200, 403, 200), body=_record),
    Case("GET", "/v1/portal/sync-status", admin_only()),
    Case("GET", "/v1/portal/quarantine", admin_only()),
    Case("GET", "/v1/portal/unmapped", admin_only()),
    Case("POST", "/v1/webhooks", keyed(201, 403, 201, 201), body=_webhook),
    Case("GET", "/v1/webhooks", keyed(200, 200, 200, 200)),
    Case("GET", "/v1/webhooks/{webhook_id}", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/webhooks/{w.webhook_a}"),
    Case("GET", "/v1/webhooks/{webhook_id}/deliveries", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/webhooks/{w.webhook_a}/deliveries"),
    Case("DELETE", "/v1/webhooks/{webhook_id}", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/webhooks/{w.webhook_a}"),
    Case("GET", "/v1/rankings", public(), params={"level": "province", "period": "2026-01"}),
    Case("GET", "/v1/units/{code}/scorecard", public(),
         path=lambda w: "/v1/units/H01/scorecard", params={"period": "2026-01"}),
    Case("GET", "/v1/units/{code}/history", public(),
         path=lambda w: "/v1/units/H01/history", params={"from": "2026-01", "to": "2026-03"}),
    Case("POST", "/v1/scores/refresh", keyed(200, 403, 403, 200),
         body=lambda k, w: {"period": "2026-01", "unit": UNIT_A}),
    Case("GET", "/v1/periods/{period}", public(), path=lambda w: "/v1/periods/2026-01"),
    Case("POST", "/v1/periods/{period}/close", admin_only(),
         path=lambda w: "/v1/periods/2025-01/close"),
    Case("POST", "/v1/periods/{period}/reopen", admin_only(),
         path=lambda w: "/v1/periods/2025-01/reopen"),
    Case("GET", "/v1/audit", admin_only()),
    Case("GET", "/v1/units/{code}/what-if", public(200), path=lambda w: "/v1/units/H01/what-if",
         params={"period": "2026-01", "target": "score:80"}),
    Case("GET", "/v1/units/{code}/projection", public(200),
         path=lambda w: "/v1/units/H01/projection", params={"period": "2026-01"}),
    Case("GET", "/v1/units/{code}/integrity", keyed(200, 403, 200, 200),
         path=lambda w: f"/v1/units/{UNIT_A}/integrity", params={"period": "2026-03"}),
    Case("POST", "/v1/units/{code}/integrity/{rule}/resolve", admin_only(404),
         path=lambda w: f"/v1/units/{UNIT_A}/integrity/quick_finish/resolve",
         body=lambda k, w: {"period": "2026-03", "note": "checked"}),
    Case("POST", "/dvcqg/login", portal(), codes={**dict.fromkeys(KINDS, 3), "revoked": 2},
         body=lambda k, w: {"username": "matrix", "password": "not-a-key"}),
    Case("POST", "/dvcqg/service", portal(),
         codes={**dict.fromkeys(KINDS, 0), "none": 2, "revoked": 2},
         body=lambda k, w: {"service": "TraCuuHoSo", "mahoso": DOSSIER_A, "madonvi": ""}),
    Case("POST", "/dvcqg/DongBoHoSoMC", portal(), codes=PORTAL_WRITE, body=_lgsp_record,
         params={"MaDinhDanhDV": UNIT_A, "isUpdating": "False"}),
    Case("POST", "/dvcqg/CapNhatTienDoHoSoMC", portal(), codes=PORTAL_WRITE, body=_progress,
         params={"MaDinhDanhDV": UNIT_A}),
]  # fmt: skip


def test_the_matrix_covers_every_operation_of_the_schema(app: FastAPI) -> None:
    operations = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }
    covered = {(c.method, c.template) for c in CASES}
    assert operations - covered == set(), "add these endpoints to the access matrix"
    assert covered - operations == set()


async def test_every_endpoint_answers_every_kind_of_caller_exactly(
    client: httpx.AsyncClient, world: World
) -> None:
    mismatches = []
    for case in CASES:
        path = case.path(world) if case.path else case.template
        for kind in KINDS:
            response = await client.request(
                case.method,
                path,
                params=case.params,
                json=case.body(kind, world) if case.body else None,
                headers=world.keys[kind],
            )
            if case.codes is not None and response.status_code == 200:
                code = response.json().get("error_code")
                if code != case.codes[kind]:
                    mismatches.append(
                        f"{case.method} {path} as {kind}: error_code {code} "
                        f"(expected {case.codes[kind]}) {response.text[:200]}"
                    )
            if response.status_code != case.expect[kind]:
                mismatches.append(
                    f"{case.method} {path} as {kind}: {response.status_code} "
                    f"(expected {case.expect[kind]}) {response.text[:200]}"
                )
            elif response.status_code >= 400 and case.codes is None:
                assert response.headers["content-type"] == "application/problem+json"
                if response.status_code == 401:
                    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not mismatches, "\n".join(mismatches)


async def test_a_revoked_key_is_refused_at_its_very_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.keys["desk_a"]
    assert (await client.get(f"/v1/dossiers/{DOSSIER_A}", headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{world.key_ids['desk_a']}", headers=ADMIN)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = await client.get(f"/v1/dossiers/{DOSSIER_A}", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The key is unknown or revoked."
    write = await client.post("/v1/dossier-events", json=_event("after", world), headers=headers)
    assert write.status_code == 401


@pytest.mark.parametrize(
    "authorization",
    ["Bearer chiso_000000000000_wrongsecret", "Bearer not-a-key", "Basic YWRtaW46YWRtaW4=",
     "Bearer ", "Bearer test-admin-token-0123456788"],
)  # fmt: skip
async def test_forged_keys_are_unauthenticated(
    client: httpx.AsyncClient, world: World, authorization: str
) -> None:
    response = await client.get(f"/v1/dossiers/{DOSSIER_A}",
                                headers={"Authorization": authorization})  # fmt: skip
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_key_with_a_real_prefix_and_a_wrong_secret_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    token = world.keys["desk_a"]["Authorization"].removeprefix("Bearer ")
    prefix = token.rsplit("_", 1)[0]
    forged = {"Authorization": f"Bearer {prefix}_{'x' * 32}"}
    assert (await client.get(f"/v1/dossiers/{DOSSIER_A}", headers=forged)).status_code == 401


def test_secrets_are_compared_in_constant_time() -> None:
    """Both comparisons go through hmac.compare_digest (no early exit on the first byte)."""
    import inspect

    from app.core import auth
    from app.keys import service

    assert "hmac.compare_digest" in inspect.getsource(auth.authenticate)
    assert "hmac.compare_digest" in inspect.getsource(service.principal_for_key)
