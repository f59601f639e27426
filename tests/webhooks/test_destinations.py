"""Webhooks go out, never in: where a subscription may point, and where a delivery may go.

Deliveries here go over the real network to receivers on 127.0.0.1 (tests/webhooks/receiver.py),
which only an operator's explicit CHISO_WEBHOOK_ALLOWED_NETWORKS admits.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from app.main import create_app
from app.webhooks import destinations
from app.webhooks.destinations import Address, Refused, Rules, Unresolved
from tests.helpers import ADMIN, province_with_communes
from tests.webhooks.receiver import Reply, local_receiver
from tests.webhooks.test_delivery import FAST, Receiver, assert_signed, overdue, run_worker

PUBLIC_ONLY = "webhooks go to public addresses only"
NEVER = "no setting admits it"
HTTPS_ONLY = (
    "use https: plain http is accepted only in development and to the operator's own "
    "networks (CHISO_WEBHOOK_ALLOWED_NETWORKS)"
)
LOOPBACK = "127.0.0.0/8"


def fixed_dns(answers: dict[str, list[str]]) -> Callable[[str], Awaitable[list[Address]]]:
    """A resolver with fixed answers (a name it does not know does not resolve)."""

    async def resolve(host: str) -> list[Address]:
        return [ipaddress.ip_address(a) for a in answers.get(host, [])]

    return resolve


@contextlib.asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a deployment configured with ``settings``."""
    application = create_app(settings)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://chiso.test"
        ) as client,
    ):
        yield client


def configured(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


async def subscribe(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.post(
        "/v1/webhooks",
        json={"url": url, "unit_code": "H01", "kinds": ["dossier.overdue"]},
        headers=ADMIN,
    )


async def subscribed(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await subscribe(client, url)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"] == [{"pointer": "#/url", "detail": reason}]
    assert problem["detail"] == f"url: {reason}"


async def log_of(client: httpx.AsyncClient, webhook: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{webhook['id']}/deliveries", headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- at subscription -----------------------------------------------------------------------

LOOP = f"a loopback address: {PUBLIC_ONLY}"
META = f"a cloud metadata address: {NEVER}"


def _(what: str) -> str:
    return f"{what}: {PUBLIC_ONLY}"


FORBIDDEN = [
    # loopback, in every spelling a URL parser or resolver accepts
    ("https://127.0.0.1/hook", f"127.0.0.1 is {LOOP}"),
    ("https://0x7f000001/hook", f"127.0.0.1 is {LOOP}"),
    ("https://2130706433/hook", f"127.0.0.1 is {LOOP}"),
    ("https://0177.0.0.1/hook", f"127.0.0.1 is {LOOP}"),
    ("https://127.1:6379/hook", f"127.0.0.1 is {LOOP}"),
    ("https://[::1]/hook", f"::1 is {LOOP}"),
    (
        "https://[::ffff:127.0.0.1]/",
        _("::ffff:7f00:1 is a loopback address (it leads to 127.0.0.1)"),
    ),
    ("https://[::7f00:1]/hook", _("::7f00:1 is a reserved address")),
    # names that mean this machine
    ("https://localhost:5432/", f"localhost resolves to 127.0.0.1, {LOOP}"),
    ("https://localhost./", f"localhost. resolves to 127.0.0.1, {LOOP}"),
    ("https://LocalHost/", f"localhost resolves to 127.0.0.1, {LOOP}"),
    ("https://db.localhost/", f"db.localhost resolves to 127.0.0.1, {LOOP}"),
    # cloud metadata
    ("https://169.254.169.254/latest/meta-data/", f"169.254.169.254 is {META}"),
    ("https://[fd00:ec2::254]/", f"fd00:ec2::254 is {META}"),
    ("https://100.100.100.200/", f"100.100.100.200 is {META}"),
    ("https://[::ffff:169.254.169.254]/", f"::ffff:a9fe:a9fe is {META}"),
    # private and other special-purpose ranges
    ("https://10.1.2.3/", _("10.1.2.3 is a private address")),
    ("https://172.16.5.4/", _("172.16.5.4 is a private address")),
    ("https://192.168.1.1/", _("192.168.1.1 is a private address")),
    ("https://100.64.0.1/", _("100.64.0.1 is a shared (carrier-grade NAT) address")),
    ("https://169.254.10.20/", _("169.254.10.20 is a link-local address")),
    ("https://[fe80::1]/", _("fe80::1 is a link-local address")),
    ("https://[fd12:3456::1]/", _("fd12:3456::1 is a unique-local address")),
    ("https://224.0.0.251/", _("224.0.0.251 is a multicast address")),
    ("https://[ff02::1]/", _("ff02::1 is a multicast address")),
    ("https://0.0.0.0/", _("0.0.0.0 is the unspecified address")),
    ("https://[::]/", _(":: is the unspecified address")),
    ("https://240.0.0.1/", _("240.0.0.1 is a reserved address")),
    ("https://255.255.255.255/", _("255.255.255.255 is the broadcast address")),
    ("https://192.0.2.10/", _("192.0.2.10 is a documentation address")),
    # IPv4 inside IPv6: NAT64 and 6to4 forms of a private address
    ("https://[64:ff9b::a00:1]/", _("64:ff9b::a00:1 is a private address (it leads to 10.0.0.1)")),
    ("https://[2002:a00:1::1]/", _("2002:a00:1::1 is a private address (it leads to 10.0.0.1)")),
]


async def test_a_subscription_to_a_forbidden_address_is_422_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    await province_with_communes(client)
    # One test for the whole table: each case costs a request, not a fresh database.
    for url, reason in FORBIDDEN:
        response = await subscribe(client, url)
        assert response.status_code == 422, url
        assert_refused(response, reason)
    assert (await client.get("/v1/webhooks", headers=ADMIN)).json()["items"] == []


async def test_public_addresses_and_names_that_do_not_resolve_yet_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    await province_with_communes(client)
    for url in (
        "https://8.8.8.8/hook",
        "https://[2606:4700::1111]/hook",
        "https://[64:ff9b::808:808]/hook",  # NAT64 of a public address
        "https://desk.h01.invalid/hook",  # checked again at every delivery
    ):
        response = await subscribe(client, url)
        assert response.status_code == 201, (url, response.text)
        assert response.json()["url"] == url


async def test_http_is_refused_outside_development_except_to_allowed_networks(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await province_with_communes(client)
    # The test deployment is not development: a public receiver must use https.
    assert_refused(await subscribe(client, "http://8.8.8.8/hook"), HTTPS_ONLY)

    production = configured(settings, environment="production", webhook_allowed_networks=[LOOPBACK])
    async with api(production) as operator:
        assert (await subscribe(operator, "http://127.0.0.1:8080/hook")).status_code == 201
        assert (await subscribe(operator, "https://127.0.0.1:8443/hook")).status_code == 201
        assert_refused(await subscribe(operator, "http://8.8.8.8/hook"), HTTPS_ONLY)
        assert (await subscribe(operator, "https://8.8.8.8/hook")).status_code == 201
        # Every address of a name must be allowed: localhost is ::1 as well.
        assert_refused(
            await subscribe(operator, "http://localhost:8080/hook"),
            f"localhost resolves to ::1, a loopback address: {PUBLIC_ONLY}",
        )
        assert_refused(
            await subscribe(operator, "https://10.1.2.3/hook"),
            f"10.1.2.3 is a private address: {PUBLIC_ONLY}",
        )

    async with api(configured(settings, environment="development")) as laptop:
        assert (await subscribe(laptop, "http://8.8.8.8/hook")).status_code == 201
        # Development relaxes the scheme, never the addresses.
        assert_refused(
            await subscribe(laptop, "http://127.0.0.1:8080/hook"),
            f"127.0.0.1 is a loopback address: {PUBLIC_ONLY}",
        )


async def test_metadata_addresses_are_refused_even_inside_an_allowed_network(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await province_with_communes(client)
    allowed = configured(settings, webhook_allowed_networks=["169.254.0.0/16", "fd00::/8"])
    async with api(allowed) as operator:
        assert (await subscribe(operator, "http://169.254.10.20/hook")).status_code == 201
        assert (await subscribe(operator, "http://[fd00:1::5]/hook")).status_code == 201
        for url, address in [
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("http://169.254.170.2/v2/credentials", "169.254.170.2"),
            ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
        ]:
            assert_refused(
                await subscribe(operator, url), f"{address} is a cloud metadata address: {NEVER}"
            )


# --- the check itself: resolution -----------------------------------------------------------


async def test_every_address_a_name_resolves_to_must_be_allowed() -> None:
    dns = fixed_dns(
        {
            "public.example": ["8.8.8.8", "2606:4700::1111"],
            "mixed.example": ["8.8.8.8", "10.0.0.7"],
            "intranet.example": ["127.0.0.1"],
            "internal.example": ["10.20.3.4"],
        }
    )
    found = await destinations.check("https://public.example/hook", Rules(), dns)
    assert [str(a) for a in found.addresses] == ["8.8.8.8", "2606:4700::1111"]
    with pytest.raises(Refused) as mixed:
        await destinations.check("https://mixed.example/hook", Rules(), dns)
    assert mixed.value.reason == _("mixed.example resolves to 10.0.0.7, a private address")
    with pytest.raises(Refused) as loopback:
        await destinations.check("https://intranet.example/hook", Rules(), dns)
    assert loopback.value.reason == (
        f"intranet.example resolves to 127.0.0.1, a loopback address: {PUBLIC_ONLY}"
    )
    # The operator's own range admits the internal receiver, and only that range.
    operator = Rules(allowed=(ipaddress.ip_network("10.20.0.0/16"),))
    inside = await destinations.check("https://internal.example/hook", operator, dns)
    assert [str(a) for a in inside.addresses] == ["10.20.3.4"]
    with pytest.raises(Refused):
        await destinations.check("https://mixed.example/hook", operator, dns)
    with pytest.raises(Unresolved):
        await destinations.check("https://unknown.example/hook", Rules(), dns)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # Forms httpx passes on as names while a resolver reads them as 127.0.0.1.
        ("https://0x7f000001/", f"0x7f000001 is 127.0.0.1, a loopback address: {PUBLIC_ONLY}"),
        ("https://2130706433/", f"2130706433 is 127.0.0.1, a loopback address: {PUBLIC_ONLY}"),
        ("https://127.1/", f"127.1 is 127.0.0.1, a loopback address: {PUBLIC_ONLY}"),
        ("https://0x7f.1/", f"0x7f.1 is 127.0.0.1, a loopback address: {PUBLIC_ONLY}"),
        ("ftp://8.8.8.8/", "the URL must start with http:// or https://"),
    ],
)
async def test_stored_urls_in_shorthand_forms_are_judged_by_their_address(
    url: str, reason: str
) -> None:
    # Subscriptions are normalised first (see above); this is the check every delivery makes
    # of whatever URL is stored, so it must not depend on that normalisation.
    with pytest.raises(Refused) as refused:
        await destinations.check(url, Rules(), fixed_dns({}))
    assert refused.value.reason == reason


async def test_the_system_resolver_answers_for_localhost() -> None:
    assert ipaddress.ip_address("127.0.0.1") in await destinations.system_resolver("localhost")
    with pytest.raises(Unresolved):
        await destinations.check("https://nowhere.invalid/", Rules(), destinations.system_resolver)


# --- at delivery ----------------------------------------------------------------------------


async def test_an_allowed_network_admits_a_local_receiver_and_the_delivery_reaches_it(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    operator = configured(settings, webhook_allowed_networks=[LOOPBACK])
    async with local_receiver() as receiver, api(operator) as chiso:
        webhook = await subscribed(chiso, receiver.url())
        await overdue(engine, "H01.01", "D1")
        await run_worker(operator, engine)
        (got,) = receiver.got
        assert (got.host, got.path) == (f"127.0.0.1:{receiver.port}", "/hook")
        assert got.headers["x-chiso-event"] == "dossier.overdue"
        assert orjson.loads(got.body)["data"]["dossier_code"] == "D1"
        request = httpx.Request("POST", receiver.url(), content=got.body, headers=got.headers)
        assert_signed(request, webhook["secret"])
        (entry,) = await log_of(chiso, webhook)
        assert (entry["status"], entry["attempts"], entry["last_status_code"]) == (
            "delivered", 1, 200
        )  # fmt: skip


async def test_a_delivery_connects_to_the_checked_address_under_the_receivers_name(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    operator = configured(settings, webhook_allowed_networks=[LOOPBACK])
    async with local_receiver() as receiver, api(operator) as chiso:
        # Not resolvable when subscribed (so accepted); the worker's DNS says 127.0.0.1.
        webhook = await subscribed(chiso, f"http://desk.h01.example:{receiver.port}/hook")
        await overdue(engine, "H01.01", "D1")
        await run_worker(operator, engine, resolver=fixed_dns({"desk.h01.example": ["127.0.0.1"]}))
        (got,) = receiver.got
        assert got.host == f"desk.h01.example:{receiver.port}"
        (entry,) = await log_of(chiso, webhook)
        assert entry["status"] == "delivered"


async def test_a_subscription_whose_network_is_no_longer_allowed_gets_no_request(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    operator = configured(settings, webhook_allowed_networks=[LOOPBACK])
    async with local_receiver() as receiver, api(operator) as chiso:
        webhook = await subscribed(chiso, receiver.url())
    await overdue(engine, "H01.01", "D1")
    await run_worker(settings, engine)  # the operator took 127.0.0.0/8 out of the setting
    assert receiver.got == []
    (entry,) = await log_of(client, webhook)
    # Refused is final: no retries, no status code, the reason in the log.
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("failed", 1, None)
    assert entry["last_error"] == f"not sent: 127.0.0.1 is a loopback address: {PUBLIC_ONLY}"


async def test_a_name_that_turns_private_after_subscribing_is_refused_at_delivery(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    async with local_receiver() as receiver:
        webhook = await subscribed(client, f"https://rebind.example:{receiver.port}/hook")
        await overdue(engine, "H01.01", "D1")
        # DNS rebinding: the name now answers with the address of an internal service.
        await run_worker(settings, engine, resolver=fixed_dns({"rebind.example": ["127.0.0.1"]}))
        assert receiver.got == []
    (entry,) = await log_of(client, webhook)
    assert (entry["status"], entry["attempts"]) == ("failed", 1)
    assert entry["last_error"] == (
        f"not sent: rebind.example resolves to 127.0.0.1, a loopback address: {PUBLIC_ONLY}"
    )


async def test_plain_http_to_a_public_receiver_is_not_sent_outside_development(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    async with api(configured(settings, environment="development")) as laptop:
        webhook = await subscribed(laptop, "http://h01.example/hook")
    await overdue(engine, "H01.01", "D1")
    receiver = Receiver()  # every name resolves to a public address here
    await run_worker(configured(settings, environment="production"), engine, receiver)
    assert receiver.received == []
    (entry,) = await log_of(client, webhook)
    assert (entry["status"], entry["last_error"]) == ("failed", f"not sent: {HTTPS_ONLY}")


async def test_a_name_that_does_not_resolve_is_retried_then_failed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    webhook = await subscribed(client, "https://desk.h01.invalid/hook")
    await overdue(engine, "H01.01", "D1")
    await run_worker(settings, engine)  # the system's resolver: .invalid never resolves
    (entry,) = await log_of(client, webhook)
    assert (entry["status"], entry["attempts"]) == ("failed", FAST.max_attempts)
    assert entry["last_error"].startswith("not sent: desk.h01.invalid does not resolve")


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    operator = configured(settings, webhook_allowed_networks=[LOOPBACK])
    async with local_receiver() as receiver, api(operator) as chiso:
        receiver.default = Reply(302, b"moved", {"Location": receiver.url("/elsewhere")})
        webhook = await subscribed(chiso, receiver.url())
        await overdue(engine, "H01.01", "D1")
        await run_worker(operator, engine)
        assert [got.path for got in receiver.got] == ["/hook"] * FAST.max_attempts
        (entry,) = await log_of(chiso, webhook)
    assert (entry["status"], entry["last_status_code"]) == ("failed", 302)
    assert entry["last_error"] == (
        f"HTTP 302 redirect not followed http://127.0.0.1:{receiver.port}/elsewhere"
    )


async def test_the_log_keeps_a_short_sanitised_excerpt_of_an_error_answer(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    operator = configured(settings, webhook_allowed_networks=[LOOPBACK])
    page = "\x1b[31mboom\x1b[0m\r\n\tline\u202e2\x00 " + "x" * 5000 + "SECRET-AT-THE-END"
    async with local_receiver(default=Reply(500, page.encode())) as receiver, api(operator) as c:
        webhook = await subscribed(c, receiver.url())
        await overdue(engine, "H01.01", "D1")
        await run_worker(operator, engine)
        (entry,) = await log_of(c, webhook)
    # Escapes, NUL and the bidi override gone, whitespace runs one space, 100 characters.
    excerpt = "[31mboom[0m line2 " + "x" * 81 + "…"
    assert len(excerpt) == 100
    assert (entry["last_status_code"], entry["last_error"]) == (500, f"HTTP 500 {excerpt}")


# --- https with the operator's own certificates ---------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a certificate it signed for receiver.test (made with openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    paths = {name: folder / name for name in ("ca.pem", "ca.key", "cert.pem", "cert.key")}
    csr, extensions = folder / "cert.csr", folder / "cert.ext"
    extensions.write_text("subjectAltName=DNS:receiver.test\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", paths["ca.key"], "-out", paths["ca.pem"], "-days", "2",
         "-subj", "/CN=chiso test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"],
        ["req", *ec, "-keyout", paths["cert.key"], "-out", csr, "-subj", "/CN=receiver.test"],
        ["x509", "-req", "-in", csr, "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"],
         "-CAcreateserial", "-out", paths["cert.pem"], "-days", "2", "-extfile", extensions],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return paths


async def test_https_to_an_internal_receiver_verifies_its_name_with_the_ca_bundle(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    certificates: dict[str, Path],
) -> None:
    await province_with_communes(client)
    operator = configured(
        settings, webhook_allowed_networks=[LOOPBACK], webhook_ca_bundle=certificates["ca.pem"]
    )
    dns = fixed_dns({"receiver.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
    tls = (certificates["cert.pem"], certificates["cert.key"])
    async with local_receiver(certificate=tls) as receiver, api(operator) as chiso:
        good = await subscribed(chiso, receiver.url(host="receiver.test"))
        # The same address under a name the certificate does not carry.
        impostor = await subscribed(chiso, receiver.url(host="impostor.test"))
        await overdue(engine, "H01.01", "D1")
        await run_worker(operator, engine, resolver=dns)
        assert [(got.host, got.path) for got in receiver.got] == [
            (f"receiver.test:{receiver.port}", "/hook")
        ]
        (delivered,) = await log_of(chiso, good)
        assert delivered["status"] == "delivered"

        # Without the operator's CA the receiver's certificate is not trusted.
        for webhook in (good, impostor):
            await chiso.delete(f"/v1/webhooks/{webhook['id']}", headers=ADMIN)
        untrusted = await subscribed(chiso, receiver.url(host="receiver.test", path="/again"))
        await overdue(engine, "H01.01", "D2")
        await run_worker(configured(operator, webhook_ca_bundle=None), engine, resolver=dns)
        assert len(receiver.got) == 1

        for webhook, problem in [(impostor, "Hostname mismatch"), (untrusted, "unable to get")]:
            (entry,) = await log_of(chiso, webhook)
            assert (entry["status"], entry["attempts"]) == ("failed", FAST.max_attempts)
            assert entry["last_status_code"] is None
            assert entry["last_error"].startswith(
                "ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            )
            assert problem in entry["last_error"] and len(entry["last_error"]) <= 100


# --- settings -------------------------------------------------------------------------------


def test_allowed_networks_are_validated_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def networks() -> list[str]:
        return Settings(environment="development").webhook_allowed_networks

    monkeypatch.setenv("CHISO_WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16, fd00:20::/32,127.0.0.1")
    assert networks() == ["10.20.0.0/16", "fd00:20::/32", "127.0.0.1/32"]
    monkeypatch.setenv("CHISO_WEBHOOK_ALLOWED_NETWORKS", '["10.20.0.0/16"]')
    assert networks() == ["10.20.0.0/16"]
    monkeypatch.delenv("CHISO_WEBHOOK_ALLOWED_NETWORKS")
    assert networks() == []
    for bad, message in [
        ("10.20.1.0/16", "CHISO_WEBHOOK_ALLOWED_NETWORKS: 10.20.1.0/16 has host bits set"),
        ("10.20.0.0/16,intranet", "CHISO_WEBHOOK_ALLOWED_NETWORKS: 'intranet' does not appear"),
    ]:
        monkeypatch.setenv("CHISO_WEBHOOK_ALLOWED_NETWORKS", bad)
        with pytest.raises(ValidationError) as error:
            networks()
        assert message in str(error.value)


def test_a_ca_bundle_that_does_not_load_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CHISO_WEBHOOK_CA_BUNDLE"):
        Settings(environment="development", webhook_ca_bundle=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValidationError, match="CHISO_WEBHOOK_CA_BUNDLE"):
        Settings(environment="development", webhook_ca_bundle=garbage)
