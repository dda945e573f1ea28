"""Upstream failures are classified into causes an operator can act on."""

import errno
import ssl
from types import SimpleNamespace

import aiohttp
import pytest

from hubproxy.cache.upstream import failure_cause, upstream_host

PLAIN = SimpleNamespace(host="127.0.0.1", port=9, is_ssl=False, ssl=True)
TLS = SimpleNamespace(host="127.0.0.1", port=9, is_ssl=True, ssl=True)


def wrong_version() -> ssl.SSLError:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    return error


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (aiohttp.ClientConnectorDNSError(PLAIN, OSError(-2, "Name or service not known")), "DNS failure"),  # type: ignore[arg-type]
        (aiohttp.ClientConnectorError(PLAIN, ConnectionRefusedError(errno.ECONNREFUSED, "refused")), "connection refused"),  # type: ignore[arg-type]
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), "connection reset"),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), "connection reset"),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), "timeout"),
        (aiohttp.ConnectionTimeoutError("Connection timeout"), "timeout"),
        (TimeoutError(), "timeout"),
        (aiohttp.ClientConnectorSSLError(TLS, wrong_version()), "TLS error (wrong version number)"),  # type: ignore[arg-type]
        (aiohttp.ClientConnectorError(TLS, ConnectionResetError()), "TLS error (connection reset during the handshake)"),  # type: ignore[arg-type]
        (aiohttp.ServerDisconnectedError(), "connection closed without an answer"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "connection broke mid-transfer"),
    ],
)  # fmt: skip
def test_failure_causes(error: BaseException, cause: str) -> None:
    assert failure_cause(error) == cause


def test_the_host_never_carries_credentials_or_the_signed_query() -> None:
    assert upstream_host("https://user:secret@CDN.example:8443/file?signature=abc") == (
        "cdn.example:8443"
    )
