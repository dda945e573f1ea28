"""The upstream hub client: the ONLY place upstream HTTP is spoken and decoded into HubErrors.

It authenticates with hubproxy's own credential (`settings.upstream_token`) and nothing else:
a client's token never leaves hubproxy. It follows the hub's redirects itself (hf-protocol.md
§2.1): same-origin ones with the credential, off-origin (CDN) ones without, reading file
metadata from the redirect response. Xet signals are stripped from every JSON document, so
clients with hf_xet installed download through hubproxy over plain HTTP.

Every failure it raises says where and what: "Upstream <host>: <operation> failed: <cause>",
with the cause classified (timeout, connection refused, connection reset, TLS error, DNS
failure, HTTP status N, ...). The same words go to the log line (with `upstream_host`,
`operation` and `cause` as fields) and to the client's `X-Error-Message`. Only the host of a
URL is ever shown: download URLs are signed.
"""

import errno
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit

import aiohttp

from hubproxy.cache.upstream_budget import UpstreamBudget
from hubproxy.constants import (
    COMMIT_SHA_PATTERN,
    HEADER_ERROR_CODE,
    HEADER_ERROR_MESSAGE,
    HEADER_LINKED_ETAG,
    HEADER_LINKED_SIZE,
    HEADER_REPO_COMMIT,
    PLURAL_BY_REPO_TYPE,
    SHA256_PATTERN,
    XET_JSON_KEY,
)
from hubproxy.errors import (
    BadRequest,
    DisabledRepo,
    DownloadUrlExpired,
    EntryNotFound,
    Forbidden,
    GatedRepo,
    HubError,
    OfflineMiss,
    RangeNotSatisfiable,
    RateLimited,
    RepoMoved,
    RepoNotFound,
    RevisionNotFound,
    UpstreamTimeout,
    UpstreamTruncated,
    UpstreamUnavailable,
)
from hubproxy.metrics import UPSTREAM_ERRORS
from hubproxy.naming import RepoRef, canonical_name
from hubproxy.numbers import InvalidNumber, whole_number
from hubproxy.settings import Settings

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 10
READ_BUFFER_SIZE = 256 * 1024
# Signed CDN URLs are refreshed this long before they say they expire.
URL_EXPIRY_MARGIN_SECONDS = 30.0
# When a URL does not say when it expires, trust it this long.
DEFAULT_URL_LIFETIME_SECONDS = 600.0
_EXPIRY_PARAMETERS = ("expires", "x-amz-expires", "se")
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


# The operations named in failure messages; callers of the JSON API name theirs.
RESOLVE = "resolve"
FILE_FETCH = "file fetch"
METADATA_REQUEST = "metadata request"


def is_upstream_failure(error: BaseException) -> bool:
    """True for errors that say nothing about the content (down, slow, rate-limited, offline).

    Those are the ones after which a last known answer may be served instead (stale).
    """
    return isinstance(error, UpstreamUnavailable | RateLimited | OfflineMiss)


def normalize_etag(value: str | None) -> str | None:
    """`W/"abc"` → `abc`, as the client does."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def strip_xet(document: Any) -> Any:
    """Remove every `xetHash` (and `xetEnabled`) key, at any depth."""
    if isinstance(document, dict):
        return {
            key: strip_xet(value)
            for key, value in document.items()
            if key not in (XET_JSON_KEY, "xetEnabled")
        }
    if isinstance(document, list):
        return [strip_xet(item) for item in document]
    return document


def next_link(headers: Mapping[str, str]) -> str | None:
    """The `rel="next"` URL of an RFC 8288 `Link` header, if any."""
    for value in headers.get("Link", "").split(","):
        match = _LINK_NEXT.search(value)
        if match:
            return match.group(1)
    return None


_TYPE_BY_PLURAL = {plural: repo_type for repo_type, plural in PLURAL_BY_REPO_TYPE.items()}
_TYPE_BY_PREFIX = {"datasets": "dataset", "spaces": "space"}


def repo_named_by(url: str) -> tuple[str, str] | None:
    """(repo type, repo id) a hub URL names (`/api/{type}s/{id}/...`, `/{id}/resolve/...`,
    `/api/resolve-cache/{type}s/{id}/...`), or None for other URLs (CDN, storage)."""
    segments = [unquote(segment) for segment in urlsplit(url).path.split("/")[1:]]
    if segments[:2] == ["api", "resolve-cache"]:
        segments = ["api", *segments[2:]]
    if len(segments) >= 4 and segments[0] == "api" and segments[1] in _TYPE_BY_PLURAL:
        return _TYPE_BY_PLURAL[segments[1]], f"{segments[2]}/{segments[3]}"
    repo_type = "model"
    if segments and segments[0] in _TYPE_BY_PREFIX:
        repo_type, segments = _TYPE_BY_PREFIX[segments[0]], segments[1:]
    if len(segments) >= 3 and segments[2] == "resolve":
        return repo_type, f"{segments[0]}/{segments[1]}"
    return None


def check_same_repo(asked: str, answered: str) -> None:
    """Raise `RepoMoved` when upstream's answer at `answered` names another repo than the
    request to `asked` did: hubproxy's credential must never read a repo that was not
    authorized (a renamed repo's old name may now lead to a gated one)."""
    before, after = repo_named_by(asked), repo_named_by(answered)
    if before is None or after is None:
        return
    if before[0] != after[0] or canonical_name(before[1]) != canonical_name(after[1]):
        logger.info("upstream moved %s:%s to %s:%s", *before, *after)
        raise RepoMoved(after[0], after[1])


def _url_expiry(url: str, obtained_at: float) -> float:
    query = {key.lower(): values for key, values in parse_qs(urlsplit(url).query).items()}
    for name in _EXPIRY_PARAMETERS:
        if name in query:
            try:
                value = whole_number(query[name][0])
            except InvalidNumber:
                continue
            # `X-Amz-Expires` is a lifetime in seconds; the others are absolute timestamps.
            return obtained_at + value if name == "x-amz-expires" else float(value)
    return obtained_at + DEFAULT_URL_LIFETIME_SECONDS


@dataclass(frozen=True, slots=True)
class UpstreamFile:
    """File metadata from a `/resolve/` HEAD, and where its bytes can be fetched."""

    commit: str
    size: int
    git_oid: str | None
    sha256: str | None
    download_url: str
    url_expires_at: float

    def url_is_fresh(self) -> bool:
        return time.time() < self.url_expires_at - URL_EXPIRY_MARGIN_SECONDS


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def upstream_host(url: str) -> str:
    """`host[:port]` of `url`, without credentials: what failure messages may show."""
    return urlsplit(url).netloc.lower().rpartition("@")[2]


_CAUSE_BY_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection reset",
    errno.ECONNABORTED: "connection reset",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _tls_cause(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None)
    return f"TLS error ({reason.replace('_', ' ').lower()})" if reason else "TLS error"


def failure_cause(error: BaseException) -> str:
    """What went wrong on the way to upstream, in a few words an operator can act on."""
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return "DNS failure"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return "TLS error (certificate not trusted)"
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ssl.SSLError):
            return _tls_cause(error.os_error)
        connection_key = error.args[0] if error.args else None
        if getattr(connection_key, "is_ssl", False) and isinstance(
            error.os_error, ConnectionResetError
        ):
            # The TCP connection was accepted (else: refused) and dropped during the handshake.
            return "TLS error (connection reset during the handshake)"
    if isinstance(error, ssl.SSLError):
        return _tls_cause(error)
    if isinstance(error, aiohttp.ClientSSLError):
        return "TLS error"
    # aiohttp's connect and read timeouts are TimeoutErrors too (and ClientErrors).
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "connection broke mid-transfer"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "connection closed without an answer"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "connection reset"
    if isinstance(error, OSError) and error.errno in _CAUSE_BY_ERRNO:
        return _CAUSE_BY_ERRNO[error.errno]
    if error.__cause__ is not None and error.__cause__ is not error:
        return failure_cause(error.__cause__)
    return type(error).__name__


def _failure(
    url: str,
    operation: str,
    cause: str,
    *,
    kind: str = "unavailable",
    error_class: type[UpstreamUnavailable] = UpstreamUnavailable,
) -> UpstreamUnavailable:
    """Log, count and build the error for a failed upstream `operation` on `url`."""
    host = upstream_host(url)
    logger.warning(
        "upstream %s: %s failed: %s",
        host,
        operation,
        cause,
        extra={"upstream_host": host, "operation": operation, "cause": cause},
    )
    UPSTREAM_ERRORS.labels(kind).inc()
    return error_class(f"Upstream {host}: {operation} failed: {cause}")


def _transport_failure(url: str, operation: str, error: BaseException) -> UpstreamUnavailable:
    """The error for an exception raised by aiohttp (or a timeout) during `operation`."""
    cause = failure_cause(error)
    if cause == "timeout":
        return _failure(url, operation, cause, kind="timeout", error_class=UpstreamTimeout)
    if isinstance(error, aiohttp.ClientPayloadError):
        return _failure(url, operation, cause, kind="truncated", error_class=UpstreamTruncated)
    return _failure(url, operation, cause)


class UpstreamClient:
    """aiohttp session to the upstream hub; one per process.

    Body fetches take a slot of `budget` (default: `upstream_concurrency` in this process).
    """

    def __init__(self, settings: Settings, budget: UpstreamBudget | None = None) -> None:
        self.base_url = settings.upstream
        self.offline = settings.offline
        self._token = settings.upstream_token
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.upstream_timeout, sock_read=settings.upstream_timeout
        )
        self._concurrency = settings.upstream_concurrency
        self._budget = budget or UpstreamBudget(settings.upstream_concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._concurrency * 2, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": "hubproxy/0.1"},
            # Never store or resend cookies a CDN sets; every request stands alone.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Large socket reads: bodies arrive in pieces of up to a few MiB, not 64 KiB, which
            # cuts the per-piece Python work of a cold download several times over.
            read_bufsize=READ_BUFFER_SIZE,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return self._session

    def _headers_for(self, url: str) -> dict[str, str]:
        """hubproxy's credential, only for the upstream hub's own origin."""
        if self._token and _origin(url) == _origin(self.base_url):
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def _check_online(self) -> None:
        if self.offline:
            raise OfflineMiss()

    def repo_url(self, ref: RepoRef, *parts: str) -> str:
        """`{upstream}/api/{type}s/{repo}/{part}/...`; parts are quoted whole (`/` included)."""
        quoted = "".join("/" + quote(part, safe="") for part in parts)
        return f"{self.base_url}/api/{PLURAL_BY_REPO_TYPE[ref.repo_type]}/{ref.repo_id}{quoted}"

    # JSON API --------------------------------------------------------------------------

    async def _request_json(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] | None = None,
        not_found: type[HubError],
        operation: str,
    ) -> tuple[Any, str | None]:
        self._check_online()
        try:
            async with self.session.request(
                method,
                url,
                params=list(params),
                data=None if form is None else list(form),
                headers=self._headers_for(url),
            ) as response:
                check_same_repo(url, str(response.url))
                if response.status >= 400:
                    await _raise_for_status(response, not_found, operation)
                body = await response.read()
                link = next_link(response.headers)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _transport_failure(url, operation, error) from error
        try:
            return strip_xet(json.loads(body)), link
        except ValueError:
            raise _failure(url, operation, "invalid JSON in the answer") from None

    async def get_json(
        self,
        url: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        not_found: type[HubError] = RepoNotFound,
        operation: str = METADATA_REQUEST,
    ) -> tuple[Any, str | None]:
        """GET a JSON document; returns it (xet-stripped) and the `Link` next URL, if any.

        `operation` ("repo info", "tree", ...) names the request in failure messages.
        """
        return await self._request_json(
            "GET", url, params=params, not_found=not_found, operation=operation
        )

    async def post_form_json(
        self,
        url: str,
        form: Sequence[tuple[str, str]],
        *,
        not_found: type[HubError] = RepoNotFound,
        operation: str = METADATA_REQUEST,
    ) -> Any:
        """POST a form, return the JSON answer (xet-stripped)."""
        document, _link = await self._request_json(
            "POST", url, form=form, not_found=not_found, operation=operation
        )
        return document

    async def get_all_pages(
        self,
        url: str,
        params: Sequence[tuple[str, str]],
        *,
        not_found: type[HubError],
        operation: str = METADATA_REQUEST,
    ) -> list[Any]:
        """Every item of a paginated listing, following upstream's `Link` next URLs."""
        items: list[Any] = []
        page, link = await self.get_json(url, params, not_found=not_found, operation=operation)
        items.extend(page)
        while link is not None:
            if _origin(urljoin(url, link)) != _origin(self.base_url):
                raise _failure(url, operation, "pagination link to another origin")
            page, link = await self.get_json(
                urljoin(url, link), not_found=not_found, operation=operation
            )
            items.extend(page)
        return items

    # Files -----------------------------------------------------------------------------

    async def file_metadata(self, ref: RepoRef, revision: str, path: str) -> UpstreamFile:
        """HEAD `/resolve/`, following redirects like huggingface_hub does (hf-protocol.md §2.1)."""
        self._check_online()
        url = f"{self.base_url}/{ref.url_path}/resolve/{quote(revision, safe='')}/{quote(path)}"
        for _hop in range(MAX_REDIRECTS):
            try:
                async with self.session.head(
                    url,
                    headers={**self._headers_for(url), "Accept-Encoding": "identity"},
                    allow_redirects=False,
                ) as response:
                    if response.status >= 400:
                        await _raise_for_status(response, EntryNotFound, RESOLVE)
                    headers = response.headers
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                raise _transport_failure(url, RESOLVE, error) from error
            is_redirect = 300 <= status < 400
            if is_redirect:
                location = headers.get("Location")
                if not location:
                    raise _failure(url, RESOLVE, f"HTTP status {status} without a Location")
                target = urljoin(url, location)
                if _origin(target) == _origin(self.base_url):
                    check_same_repo(url, target)
                    url = target
                    continue
                return _file_from_headers(headers, target, is_redirect=True, answered_by=url)
            return _file_from_headers(headers, url, is_redirect=False, answered_by=url)
        raise _failure(url, RESOLVE, "too many redirects")

    async def read_range(self, url: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Yield exactly the bytes `[start, end)` of the file at `url`, as they arrive.

        Raises `DownloadUrlExpired` if the CDN refuses the URL, `UpstreamTruncated` if the body
        ends early. Off-origin redirects are followed without credentials.
        """
        self._check_online()
        if end <= start:
            return
        async with self._budget.slot():
            response = await self._open_body(url, start, end)
            try:
                position = start
                if response.status == 200 and start > 0:
                    # A server that ignores Range: skip to the start ourselves.
                    await _discard(response, start, url)
                async for piece in response.content.iter_any():
                    remaining = end - position
                    if len(piece) >= remaining:
                        if remaining:
                            yield piece[:remaining]
                        position = end
                        break
                    position += len(piece)
                    yield piece
                if position < end:
                    raise _failure(
                        url,
                        FILE_FETCH,
                        f"body ended at byte {position} of {end}",
                        kind="truncated",
                        error_class=UpstreamTruncated,
                    )
            except (aiohttp.ClientError, TimeoutError) as error:
                raise _transport_failure(url, FILE_FETCH, error) from error
            finally:
                response.release()
                response.close()

    async def _open_body(self, url: str, start: int, end: int) -> aiohttp.ClientResponse:
        headers = {"Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
        for _hop in range(MAX_REDIRECTS):
            try:
                response = await self.session.get(
                    url, headers={**headers, **self._headers_for(url)}, allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError) as error:
                raise _transport_failure(url, FILE_FETCH, error) from error
            if 300 <= response.status < 400 and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                response.release()
                continue
            if response.status in (200, 206):
                return response
            try:
                if _origin(url) != _origin(self.base_url) and response.status in (401, 403, 410):
                    UPSTREAM_ERRORS.labels("url_expired").inc()
                    raise DownloadUrlExpired()
                await _raise_for_status(response, EntryNotFound, FILE_FETCH)
            finally:
                response.release()
        raise _failure(url, FILE_FETCH, "too many redirects")


async def _discard(response: aiohttp.ClientResponse, count: int, url: str) -> None:
    while count > 0:
        piece = await response.content.read(min(count, 1 << 20))
        if not piece:
            raise _failure(
                url,
                FILE_FETCH,
                "body ended before the requested range",
                kind="truncated",
                error_class=UpstreamTruncated,
            )
        count -= len(piece)


def _file_from_headers(
    headers: Mapping[str, str], url: str, *, is_redirect: bool, answered_by: str
) -> UpstreamFile:
    commit = headers.get(HEADER_REPO_COMMIT, "").lower()
    if not COMMIT_SHA_PATTERN.match(commit):
        raise _failure(answered_by, RESOLVE, "the answer does not look like a Hugging Face hub")
    linked_etag = normalize_etag(headers.get(HEADER_LINKED_ETAG))
    etag = normalize_etag(headers.get("ETag"))
    size_text = headers.get(HEADER_LINKED_SIZE) or (
        None if is_redirect else headers.get("Content-Length")
    )
    try:
        size = whole_number(size_text or "")
    except InvalidNumber:
        raise _failure(answered_by, RESOLVE, "no file size in the answer") from None
    sha256 = None
    git_oid = None
    for candidate in (linked_etag, etag):
        if candidate and SHA256_PATTERN.match(candidate.lower()) and sha256 is None:
            sha256 = candidate.lower()
        elif candidate and COMMIT_SHA_PATTERN.match(candidate.lower()) and git_oid is None:
            git_oid = candidate.lower()
    if sha256 is None and git_oid is None:
        raise _failure(answered_by, RESOLVE, "no content hash in the answer")
    return UpstreamFile(
        commit=commit,
        size=size,
        git_oid=git_oid,
        sha256=sha256,
        download_url=url,
        url_expires_at=_url_expiry(url, time.time()),
    )


async def _raise_for_status(
    response: aiohttp.ClientResponse, not_found: type[HubError], operation: str
) -> None:
    """Decode an upstream error response into the HubError the client should see.

    Answers about the content (not found, gated, forbidden, bad request) pass through as such;
    failures of upstream itself name the host, the `operation` and the HTTP status.
    """
    url = str(response.url)
    code = response.headers.get(HEADER_ERROR_CODE)
    message = response.headers.get(HEADER_ERROR_MESSAGE)
    if message is None:
        try:
            body = await response.read()
            parsed = json.loads(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
                message = parsed["error"]
        except (ValueError, aiohttp.ClientError):
            pass
    status = response.status
    headers: dict[str, str] = {}
    if code == "RevisionNotFound":
        raise RevisionNotFound(message)
    if code == "EntryNotFound":
        commit = response.headers.get(HEADER_REPO_COMMIT)
        if commit:
            headers[HEADER_REPO_COMMIT] = commit
        raise EntryNotFound(message, headers=headers)
    if code == "GatedRepo":
        raise GatedRepo(
            message or "This repository is gated and hubproxy's upstream credential has no access"
        )
    if message == DisabledRepo.default_message:
        raise DisabledRepo()
    if code == "RepoNotFound":
        raise RepoNotFound()
    if status == 401:
        if message == "Invalid credentials in Authorization header":
            logger.error("upstream rejected hubproxy's upstream token")
            raise _failure(url, operation, "HTTP status 401 (hubproxy's upstream token rejected)")
        raise RepoNotFound()
    if status == 404:
        raise not_found()
    if status == 429:
        UPSTREAM_ERRORS.labels("rate_limited").inc()
        host = upstream_host(url)
        logger.warning(
            "upstream %s: %s rate-limited (HTTP status 429)",
            host,
            operation,
            extra={"upstream_host": host, "operation": operation, "cause": "HTTP status 429"},
        )
        retry_after = response.headers.get("Retry-After")
        raise RateLimited(
            f"Upstream {host}: {operation} failed: HTTP status 429 (rate-limiting hubproxy)",
            headers={"Retry-After": retry_after}
            if retry_after and retry_after.isascii() and retry_after.isdigit()
            else None,
        )
    if status == 416:
        raise RangeNotSatisfiable()
    if status == 403:
        raise Forbidden(message)
    if status == 400:
        raise BadRequest(message)
    raise _failure(url, operation, f"HTTP status {status}")
