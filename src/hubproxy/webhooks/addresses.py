"""Which hosts a webhook may call: a guard against server-side request forgery.

A webhook URL is chosen by any user, and hubproxy POSTs to it from inside the network it runs
in. By default only globally routable addresses are called: loopback (hubproxy itself, its
admin endpoints), private networks, link-local addresses (cloud metadata services such as
169.254.169.254), shared, reserved, multicast and unspecified addresses are refused.
`webhook_allowed_networks` lists networks (CIDR) that are called even so: an in-house
receiver on a private network, or 127.0.0.0/8 in tests.

The check is made where the connection is made: on the addresses a name resolves to at
delivery time (`GuardedResolver`, so a name that resolves elsewhere later — DNS rebinding —
is caught), and on literal addresses before the request (aiohttp does not resolve those).
URLs are also checked when a webhook is created or changed, as far as that can be told without
resolving (`check_url`).
"""

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from hubproxy.errors import BadRequest

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class RefusedAddress(OSError):
    """A webhook host resolved to an address it may not call."""


def address_allowed(address: IpAddress, allowed: Sequence[IpNetwork]) -> bool:
    """Whether a webhook may connect to `address` (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed if network.version == address.version):
        return True
    return address.is_global and not address.is_multicast


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: object, allowed: Sequence[IpNetwork]) -> str:
    """A webhook URL as accepted on creation: http(s), with a host, not a refused address."""
    if not isinstance(url, str) or not url:
        raise BadRequest("'url' must be an http(s) URL")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"'url' is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise BadRequest(f"'url' is not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise BadRequest("'url' must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise BadRequest("'url' must not carry credentials (use the webhook secret)")
    literal = _literal(host)
    if host == "localhost" or host.endswith(".localhost"):
        literal = ipaddress.ip_address("127.0.0.1")
    if literal is not None and not address_allowed(literal, allowed):
        raise BadRequest(
            f"Webhook URLs may not point at {literal} (loopback, private, link-local or"
            " reserved addresses are refused unless listed in webhook_allowed_networks)"
        )
    return url


def check_literal_host(url: str, allowed: Sequence[IpNetwork]) -> None:
    """`RefusedAddress` for a URL whose host is a literal address it may not call."""
    host = urlsplit(url).hostname or ""
    literal = _literal(host)
    if literal is not None and not address_allowed(literal, allowed):
        raise RefusedAddress(f"refused address {literal}")


class GuardedResolver(AbstractResolver):
    """Resolves names, then keeps only the addresses a webhook may call."""

    def __init__(self, allowed: Sequence[IpNetwork]) -> None:
        self.allowed = tuple(allowed)
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        kept = [
            result
            for result in found
            if address_allowed(ipaddress.ip_address(result["host"]), self.allowed)
        ]
        if not kept:
            addresses = ", ".join(sorted({result["host"] for result in found}))
            raise RefusedAddress(f"{host} resolves only to refused addresses ({addresses})")
        return kept

    async def close(self) -> None:
        await self._resolver.close()
