"""Where webhook deliveries may go: public addresses only, unless the operator admits its own
networks (``CHISO_WEBHOOK_ALLOWED_NETWORKS``); cloud metadata addresses never.

A URL is checked when it is subscribed and again before every delivery. The check resolves
the host once and judges every address it resolves to; the delivery then connects to one of
exactly those addresses (:meth:`Destination.request_url`), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot steer a delivery inwards.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import certifi
import httpx

from app.core.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# host name -> the addresses it resolves to now (empty: it does not resolve)
Resolver = Callable[[str], Awaitable[Sequence[Address]]]

RESOLVE_TIMEOUT = 5.0

_net = ipaddress.ip_network

# Instance metadata and host-agent endpoints of cloud platforms hand out credentials to
# whoever asks from inside: no setting admits them, even inside an allowed network.
METADATA_NETWORKS: tuple[Network, ...] = tuple(
    _net(n)
    for n in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, Hetzner, ...
        "169.254.170.2/32",  # AWS ECS task credentials
        "169.254.170.23/32",  # AWS EKS pod identity
        "169.254.0.23/32",  # Tencent Cloud
        "169.254.42.42/32",  # Scaleway
        "100.100.100.200/32",  # Alibaba Cloud
        "192.0.0.192/32",  # Oracle Cloud (legacy)
        "168.63.129.16/32",  # Azure WireServer (a public-looking address)
        "fd00:ec2::/64",  # AWS over IPv6 (fd00:ec2::254, fd00:ec2::23)
        "fd20:ce::254/128",  # GCP over IPv6
    )
)

# Special-purpose ranges (IANA registries) that are not the public Internet, most specific
# first: the name is what a subscriber reads in the 422. Listed here rather than taken from
# ``ipaddress.is_global``, whose answers differ between Python versions (e.g. 6to4, NAT64).
_NOT_PUBLIC: tuple[tuple[Network, str], ...] = tuple(
    (_net(n), what)
    for n, what in (
        ("0.0.0.0/32", "the unspecified address"),
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a reserved address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a private (local-use NAT64) address"),
        ("100::/64", "a reserved (discard-only) address"),
        ("2001::/23", "a reserved address"),  # Teredo, benchmarking, ORCHID, ...
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
# Only this part of IPv6 is allocated for global unicast; everything outside it is reserved.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_METADATA = "a cloud metadata address"
_NEVER = "no setting admits it"
_PUBLIC_ONLY = "webhooks go to public addresses only"
_HTTPS_ONLY = (
    "use https: plain http is accepted only in development and to the operator's own "
    "networks (CHISO_WEBHOOK_ALLOWED_NETWORKS)"
)


class Refused(Exception):
    """The URL may not receive webhooks; ``reason`` says why, in the subscriber's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolved(Exception):
    """The host does not resolve now (it may later: DNS not yet set up, or down a moment)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What the operator admits beyond the public Internet, and whether http is enough."""

    allowed: tuple[Network, ...] = ()
    https_only: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            allowed=_networks(tuple(settings.webhook_allowed_networks)),
            https_only=settings.environment != "development",
        )

    def admits(self, address: Address) -> bool:
        return any(address in network for network in self.allowed)


@lru_cache(maxsize=16)
def _networks(texts: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL whose host resolved to ``addresses``, every one of them allowed."""

    url: httpx.URL
    addresses: tuple[Address, ...]

    @property
    def host_header(self) -> str:
        """``Host`` as the receiver expects it: the URL's own host (and port, if given)."""
        return self.url.netloc.decode("ascii")

    @property
    def server_name(self) -> str:
        """The name the receiver's TLS certificate must carry (SNI and verification)."""
        return self.url.raw_host.decode("ascii").rstrip(".")

    def request_url(self, address: Address) -> httpx.URL:
        """The URL with its host replaced by ``address``: the connection goes exactly there."""
        return self.url.copy_with(host=str(address))


def refusal(address: Address, rules: Rules) -> str | None:
    """Why ``address`` may not receive webhooks under ``rules``, or None when it may.

    IPv4 addresses carried inside IPv6 ones (IPv4-mapped, NAT64, 6to4) are judged as the IPv4
    address they lead to, so ``::ffff:127.0.0.1`` is as loopback as ``127.0.0.1``.
    """
    embedded = _embedded_ipv4(address)
    for candidate in (address, embedded):
        if candidate is not None and any(candidate in n for n in METADATA_NETWORKS):
            return _METADATA
    if rules.admits(address):
        return None
    if embedded is not None:
        why = refusal(embedded, rules)
        return f"{why} (it leads to {embedded})" if why else None
    for network, what in _NOT_PUBLIC:
        if address in network:
            return what
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


async def check(url: str, rules: Rules, resolve: Resolver) -> Destination:
    """The :class:`Destination` of ``url``, or :class:`Refused` with the reason, or
    :class:`Unresolved` when its host does not resolve now."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused(f"the URL cannot be used ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise Refused("the URL must start with http:// or https://")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise Refused("the URL has no host")
    plain_http = rules.https_only and parsed.scheme == "http"
    literal = _literal_address(host)
    try:
        addresses = (literal,) if literal is not None else await _resolve(host, resolve)
    except Unresolved:
        if plain_http and not rules.allowed:  # wherever it resolves to later, it cannot be sent
            raise Refused(_HTTPS_ONLY) from None
        raise
    for address in addresses:
        why = refusal(address, rules)
        if why is not None:
            if literal is None or str(literal) != host:
                subject = f"{host} {'resolves to' if literal is None else 'is'} {address},"
            else:
                subject = f"{host} is"
            tail = _NEVER if why == _METADATA else _PUBLIC_ONLY
            raise Refused(f"{subject} {why}: {tail}")
    if plain_http and not all(rules.admits(address) for address in addresses):
        raise Refused(_HTTPS_ONLY)
    return Destination(parsed, addresses)


def _literal_address(host: str) -> Address | None:
    """An IP literal, including the shorthand IPv4 forms resolvers accept (``0x7f000001``,
    ``2130706433``, ``0177.0.0.1``, ``127.1``): they must not slip past as "names"."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host.rstrip(".")[-1:].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


_LOOPBACK = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))


async def _resolve(host: str, resolve: Resolver) -> tuple[Address, ...]:
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: these names are this machine, whatever a resolver says; never ask one.
        return _LOOPBACK
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            found = await resolve(host)
    except TimeoutError:
        raise Unresolved(f"{host} did not resolve within {RESOLVE_TIMEOUT:g} s") from None
    except OSError as exc:
        raise Unresolved(f"{host} does not resolve ({exc.strerror or exc})") from None
    if not found:
        raise Unresolved(f"{host} does not resolve")
    return tuple(dict.fromkeys(found))


async def system_resolver(host: str) -> list[Address]:
    """The operating system's answer (hosts file, DNS), addresses in its preferred order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [
        ipaddress.ip_address(info[4][0])
        for info in infos
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    ]


@lru_cache(maxsize=4)
def _tls(ca_bundle: Path | None) -> ssl.SSLContext:
    # The public roots plus the operator's own: internal receivers and public ones both work.
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def delivery_client(settings: Settings) -> httpx.AsyncClient:
    """A client for one delivery attempt. It ignores proxy variables (``trust_env``): the
    connection must go to the checked address, not wherever a proxy would take it."""
    return httpx.AsyncClient(
        verify=_tls(settings.webhook_ca_bundle), trust_env=False, follow_redirects=False
    )
