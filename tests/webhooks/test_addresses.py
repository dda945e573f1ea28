"""Which addresses webhooks may call (`webhooks/addresses.py`): pure checks."""

import asyncio
import ipaddress

import pytest

from hubproxy.errors import BadRequest
from hubproxy.settings import SettingsError, load_settings
from hubproxy.webhooks.addresses import (
    GuardedResolver,
    RefusedAddress,
    address_allowed,
    check_literal_host,
    check_url,
)

TESTS_NETWORK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "fe80::1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1", "fd00::1",
        "240.0.0.1",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_are_refused_by_default(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address), ())


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address), ())


def test_allowed_networks_open_exactly_their_addresses() -> None:
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), TESTS_NETWORK)
    # The IPv4-mapped form is the same address.
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), TESTS_NETWORK)
    assert not address_allowed(ipaddress.ip_address("::1"), TESTS_NETWORK)
    assert not address_allowed(ipaddress.ip_address("169.254.169.254"), TESTS_NETWORK)


def test_urls_are_checked_for_literal_addresses_and_localhost() -> None:
    assert check_url("https://hooks.example.com/x", ()) == "https://hooks.example.com/x"
    for url in ("http://localhost:8000/", "http://127.0.0.1/", "http://[fe80::1]/"):
        with pytest.raises(BadRequest):
            check_url(url, ())
    assert check_url("http://localhost:8000/", TESTS_NETWORK) == "http://localhost:8000/"
    with pytest.raises(BadRequest):
        check_url("http://example.com:99999/", ())
    with pytest.raises(RefusedAddress):
        check_literal_host("http://169.254.169.254/latest", TESTS_NETWORK)


def test_names_resolving_to_refused_addresses_are_not_connected_to() -> None:
    async def resolve() -> None:
        resolver = GuardedResolver(())
        try:
            await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(RefusedAddress, match="resolves only to refused addresses"):
        asyncio.run(resolve())


def test_an_invalid_network_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="webhook_allowed_networks"):
        load_settings(environ={"HUBPROXY_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/33"})
