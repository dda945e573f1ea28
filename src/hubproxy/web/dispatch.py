"""How page requests reach their handlers: `FrontDoor` splits API from pages, `PageDispatcher`
runs a page like the API's dispatcher runs an endpoint (authorize from the table, audit the
same way), with the principal taken from the session cookie instead of a bearer token.

The split never lets a page shadow the API: a path the Hub API matches (`hf_api.routing`) is
always the API's; only paths it does not claim are offered to `web.routing.match_page`.
`BrowserDownloads` is the API's dispatcher with one addition: a download (`/resolve/`) without
an `Authorization` header takes the session cookie, so a signed-in browser downloads the
private files its pages link to.
"""

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Message, Receive, Scope, Send

from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.constants import HEADER_ERROR_CODE, HEADER_ERROR_MESSAGE
from hubproxy.errors import (
    BadRequest,
    Forbidden,
    HubError,
    MethodNotAllowed,
    NotFound,
    TokenRefused,
)
from hubproxy.hf_api.bodies import bounded_body
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.context import public_base_url, services
from hubproxy.hf_api.dispatch import Dispatcher, raw_path_of, refuse
from hubproxy.hf_api.endpoints import Endpoint
from hubproxy.hf_api.errors import request_id
from hubproxy.hf_api.middleware import request_facts
from hubproxy.hf_api.routing import RouteMatch, match_route
from hubproxy.web import sessions
from hubproxy.web.dispatch_support import cookie_header
from hubproxy.web.render import environment
from hubproxy.web.routing import match_page
from hubproxy.web.table import PAGES

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
# No external assets, no inline script: the page may load only what this server ships.
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)  # fmt: skip
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_page(scope: Scope) -> bool:
    """Whether a request is for a page: a path the API does not claim that names a page."""
    if scope["method"] not in ("GET", "HEAD", "POST"):
        return False
    raw_path = raw_path_of(scope)
    refused_by_api = False
    try:
        if match_route(raw_path) is not None:
            return False
    except BadRequest:
        refused_by_api = True  # e.g. a folder named `resolve` in a tree page's path
    try:
        return match_page(raw_path) is not None
    except BadRequest:
        # Invalid for both: the API's 400 (a client's download URL gets the Hub's error shape).
        return not refused_by_api


class FrontDoor:
    """The catch-all route: pages to `pages`, everything else to `api`."""

    def __init__(self, api: ASGIApp, pages: ASGIApp) -> None:
        self.api = api
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.pages if is_page(scope) else self.api)(scope, receive, send)


async def session_principal(request: Request) -> Principal:
    """The principal the session cookie names (anonymous: none, invalid or expired).
    A cookie whose token is no longer usable raises `TokenRefused`."""
    found = services(request)
    session = await sessions.read_session(
        found.signer,
        request.cookies.get(sessions.SESSION_COOKIE),
        found.settings.web_session_lifetime,
    )
    if session is None:
        return ANONYMOUS
    return await found.authenticator.authenticate_token_id(session.token_id)


class BrowserDownloads(Dispatcher):
    """The API dispatcher; downloads without a bearer token may use the session cookie."""

    async def _principal(self, request: Request, match: RouteMatch) -> Principal:
        if (
            match.endpoint == "resolve"
            and "authorization" not in request.headers
            and sessions.SESSION_COOKIE in request.cookies
        ):
            try:
                return await session_principal(request)
            except TokenRefused:
                return ANONYMOUS  # a stale cookie downloads what anonymous may
        return await super()._principal(request, match)


class PageDispatcher(Dispatcher):
    """Runs page handlers (`table.PAGES`) through the dispatcher's authorize-and-audit path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request.state.web_cookies = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                headers.extend(
                    (b"set-cookie", cookie.encode("latin-1"))
                    for cookie in request.state.web_cookies
                )
                message = {**message, "headers": headers}
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_headers)
        except HubError as error:
            response = error_page(request, error)
            await response(scope, receive, send_with_headers)

    def _route(self, request: Request) -> tuple[RouteMatch, Endpoint]:
        facts = request_facts(request.scope)
        facts.route = "unknown"
        match = match_page(raw_path_of(request.scope))
        if match is None:
            raise NotFound(f"No such page: {request.scope['path']}")
        facts.route = match.endpoint
        endpoint = PAGES[match.endpoint]
        if request.method not in endpoint.methods:
            raise MethodNotAllowed(headers={"Allow": ", ".join(sorted(endpoint.methods))})
        return match, endpoint

    async def _principal(self, request: Request, match: RouteMatch) -> Principal:
        found = services(request)
        state = request.state
        secure = public_base_url(request, found.settings).startswith("https:")
        state.web_secure = secure
        nonce = request.cookies.get(sessions.CSRF_COOKIE) or ""
        if not sessions.valid_nonce(nonce):
            nonce = sessions.new_nonce()
            state.web_cookies.append(
                cookie_header(sessions.CSRF_COOKIE, nonce, secure=secure, max_age=None)
            )
        state.web_nonce = nonce
        try:
            principal = await session_principal(request)
        except TokenRefused:
            # Revoked or expired since sign-in: signed out at once.
            state.web_cookies.append(
                cookie_header(sessions.SESSION_COOKIE, "", secure=secure, max_age=0)
            )
            principal = ANONYMOUS
        state.principal = principal
        state.web_csrf = await sessions.csrf_token(found.signer, nonce, principal.token_id)
        return principal

    async def _authorize(self, call: Call, endpoint: Endpoint) -> None:
        request = call.request
        if request.method == "POST":
            await _read_form(call)
            posted = request.state.web_form.get(sessions.CSRF_FIELD)
            if not await sessions.csrf_matches(
                call.services.signer, request.state.web_nonce, call.principal.token_id, posted
            ):
                raise refuse(
                    Forbidden("The form is out of date or from another site: reload and retry"),
                    "web form without a valid CSRF token",
                )
        await super()._authorize(call, endpoint)


async def _read_form(call: Call) -> None:
    """The posted `application/x-www-form-urlencoded` form, one value per field."""
    body = await bounded_body(call.request, MAX_FORM_BYTES)
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The form is not UTF-8") from None
    call.request.state.web_form = {name: values[0] for name, values in parsed.items()}


def error_page(request: Request, error: HubError) -> HTMLResponse:
    """A refused or failed page: the API's status and `X-Error-Code`, as HTML."""
    headers = {HEADER_ERROR_MESSAGE: " ".join(error.message.split())[:1024], **error.headers}
    headers[HEADER_ERROR_MESSAGE] = (
        headers[HEADER_ERROR_MESSAGE].encode("latin-1", "replace").decode("latin-1")
    )
    if error.code is not None:
        headers[HEADER_ERROR_CODE] = error.code
    if error.status >= 500:
        logger.warning("page %s -> %d %s", request.url.path, error.status, error.message)
    principal = getattr(request.state, "principal", ANONYMOUS)
    template = environment().get_template("error.html")
    body = template.render(
        principal=principal,
        csrf=getattr(request.state, "web_csrf", ""),
        status=error.status,
        message=error.message if error.status < 500 else "Internal error",
        request_id=request_id(request),
        path=request.url.path,
        title=f"{error.status}",
    )
    return HTMLResponse(body, status_code=error.status, headers=headers)
