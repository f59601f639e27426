"""Webhook subscriptions over the API: who may subscribe, validation, the secret shown once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import ADMIN, create_key, province_with_communes

HOOK = {
    "url": "https://receiver.h01.example/chiso",
    "unit_code": "H01.01",
    "kinds": ["dossier.overdue", "digest.daily"],
}


async def subscribe(
    client: httpx.AsyncClient, headers: dict[str, str], **changes: Any
) -> httpx.Response:
    return await client.post("/v1/webhooks", json={**HOOK, **changes}, headers=headers)


async def test_access_matrix_for_subscribing(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    _, own = await create_key(client, ["dossiers:read"], "H01", name="h01")
    _, other = await create_key(client, ["dossiers:read"], "H05", name="h05")
    _, writer = await create_key(client, ["dossiers:write"], "H01", name="writer")

    none = await subscribe(client, {})
    assert none.status_code == 401
    assert none.headers["content-type"] == "application/problem+json"
    assert (await subscribe(client, other)).status_code == 403
    assert (await subscribe(client, writer)).status_code == 403  # lacks dossiers:read
    mine = await subscribe(client, own)
    assert mine.status_code == 201, mine.text
    assert mine.json()["created_by"] == "h01"
    assert (await subscribe(client, ADMIN)).status_code == 201
    # A desk's key may subscribe its own unit, not the parent above it.
    _, desk = await create_key(client, ["dossiers:read"], "H01.01.MC", name="desk")
    assert (await subscribe(client, desk, unit_code="H01.01.MC")).status_code == 201
    assert (await subscribe(client, desk, unit_code="H01.01")).status_code == 403


async def test_secret_is_returned_once_and_never_listed(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    generated = await subscribe(client, ADMIN)
    secret = generated.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) >= 40
    given = await subscribe(client, ADMIN, secret="0123456789abcdef-receiver")
    assert given.json()["secret"] == "0123456789abcdef-receiver"
    assert given.json()["kinds"] == ["digest.daily", "dossier.overdue"]

    one = await client.get(f"/v1/webhooks/{generated.json()['id']}", headers=ADMIN)
    assert one.status_code == 200
    listed = await client.get("/v1/webhooks", headers=ADMIN)
    assert len(listed.json()["items"]) == 2
    for body in (one.text, listed.text):
        assert "secret" not in body and secret not in body


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"url": "ftp://receiver.example/hook"}, "#/url"),
        ({"url": "https://"}, "#/url"),
        ({"url": "receiver.example/hook"}, "#/url"),
        ({"url": "https://user:pass@receiver.example/hook"}, "#/url"),
        ({"kinds": []}, "#/kinds"),
        ({"kinds": ["dossier.lost"]}, "#/kinds/0"),
        ({"secret": "too-short"}, "#/secret"),
        ({"secret": "has spaces in the secret"}, "#/secret"),
        ({"unit_code": "H99"}, "#/unit_code"),
        ({"surprise": True}, "#/surprise"),
    ],
)
async def test_bad_subscriptions_are_422_with_a_pointer(
    client: httpx.AsyncClient, changes: dict[str, Any], pointer: str
) -> None:
    await province_with_communes(client)
    response = await subscribe(client, ADMIN, **changes)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == pointer


async def test_listing_is_limited_to_the_keys_subtree_and_pages(
    client: httpx.AsyncClient,
) -> None:
    await province_with_communes(client)
    _, own = await create_key(client, ["dossiers:read"], "H01")
    for unit in ("H01", "H01.01", "H01.02"):
        assert (await subscribe(client, ADMIN, unit_code=unit)).status_code == 201
    assert (await subscribe(client, ADMIN, unit_code="H05.01")).status_code == 201

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/webhooks", params=params, headers=own)).json()
        seen += [item["unit_code"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == ["H01", "H01.01", "H01.02"]

    commune = await client.get("/v1/webhooks", params={"unit": "H01.02"}, headers=own)
    assert [w["unit_code"] for w in commune.json()["items"]] == ["H01.02"]
    foreign = await client.get("/v1/webhooks", params={"unit": "H05"}, headers=own)
    assert foreign.status_code == 403
    everything = await client.get("/v1/webhooks", headers=ADMIN)
    assert len(everything.json()["items"]) == 4
    bad = await client.get("/v1/webhooks", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=ADMIN)
    assert bad.status_code == 400


async def test_read_disable_and_log_access(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    _, own = await create_key(client, ["dossiers:read"], "H01")
    _, other = await create_key(client, ["dossiers:read"], "H05")
    hook_id = (await subscribe(client, own)).json()["id"]
    missing = "00000000-0000-4000-8000-000000000000"

    for path in (f"/v1/webhooks/{hook_id}", f"/v1/webhooks/{hook_id}/deliveries"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=other)).status_code == 403
        assert (await client.get(path, headers=own)).status_code == 200
    assert (await client.get(f"/v1/webhooks/{missing}", headers=ADMIN)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{missing}", headers=ADMIN)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{hook_id}", headers=other)).status_code == 403

    disabled = await client.delete(f"/v1/webhooks/{hook_id}", headers=own)
    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None
    again = await client.delete(f"/v1/webhooks/{hook_id}", headers=own)
    assert again.json()["disabled_at"] == disabled.json()["disabled_at"]
    log = await client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=own)
    assert log.json() == {"items": [], "next": None}
