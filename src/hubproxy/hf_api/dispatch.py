"""One entry point for every Hub URL: match, authenticate, authorize, run the handler, audit.

`Dispatcher` routes on the raw path (`routing.py`), looks the endpoint up in the table
(`endpoints.py`) and builds the request's `Call`: the principal the token names, the audit
record, and — once the table's action is allowed on the repo, project or platform — the store
and project the handler works on. Every refusal is audited, whether it is decided here before
the handler runs or in `auth/` while it runs (both raise `authz.Refused`), and so is every
request of an endpoint the table audits, with what it did.
"""

import dataclasses

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.authz import (
    PUBLIC_REPO,
    Decision,
    Refused,
    as_seen_by,
    authorize,
    authorize_moved,
    authorize_platform,
    enforce,
)
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.auth.roles import ACTIONS, PLATFORM_ACTIONS, Action, PlatformAction
from hubproxy.errors import (
    AuthenticationRequired,
    Forbidden,
    HubError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RepoMoved,
    TokenRefused,
    UpstreamUnavailable,
)
from hubproxy.hf_api import hosted
from hubproxy.hf_api.bodies import declared_length
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.context import services
from hubproxy.hf_api.endpoints import ENDPOINTS, Endpoint
from hubproxy.hf_api.middleware import request_facts
from hubproxy.hf_api.routing import RouteMatch, match_route
from hubproxy.hf_api.streaming import StreamResponse
from hubproxy.naming import RepoRef, canonical_name

# How many renames in a row upstream may answer with before hubproxy gives up.
MAX_RENAMES = 3


def _audit_record(
    request: Request, action: str, principal: Principal, match: RouteMatch
) -> AuditRecord:
    """The record of a request, with the repo as the client named it."""
    record = AuditRecord(
        action,
        actor_kind=principal.kind,
        actor_name=principal.name,
        token_id=principal.token_id,
        request_id=request_facts(request.scope).request_id,
        client=(request.scope.get("client") or ("", 0))[0] or None,
        user_agent=request.headers.get("user-agent"),
        method=request.method,
        route=match.endpoint,
    )
    _name_target(record, match)
    return record


def _name_target(record: AuditRecord, match: RouteMatch) -> None:
    ref = match.ref
    record.repo_type = ref.repo_type if ref else None
    record.repo_id = ref.repo_id if ref else match.project
    record.revision = match.revision
    record.path = match.path or match.subject or None
    if match.discussion:
        comment = f"/comment/{match.subject}" if match.subject else ""
        record.path = f"discussions/{match.discussion}{comment}"


def _check_declared_length(request: Request, endpoint: Endpoint) -> None:
    """413 for a Content-Length over the endpoint's cap, before any of the body is read.
    Chunked bodies are counted as they are read (`bodies.bounded_body`)."""
    declared = request.headers.get("content-length")
    if endpoint.max_body is None or declared is None:
        return
    if declared_length(declared) > endpoint.max_body:
        raise PayloadTooLarge(f"Request body larger than {endpoint.max_body} bytes")


def refuse(error: HubError, reason: str) -> Refused:
    """A refusal decided here, raised like one decided in `auth/` (audited in
    `Dispatcher._run_and_audit`)."""
    return Refused(Decision(False, reason, error))


def raw_path_of(scope: Scope) -> bytes:
    """The request's path as sent (percent-encoding kept), below the app's root path."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    root_path = scope.get("root_path", "").encode()
    if root_path and raw_path.startswith(root_path):
        raw_path = raw_path[len(root_path) :]
    return raw_path


class Dispatcher:
    """A starlette endpoint (ASGI app) for every Hub URL; see the module docstring."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        match, endpoint = self._route(request)
        call = await self._authenticate(request, match, endpoint)
        await self._run_and_audit(call, endpoint, scope, receive, send)

    def _route(self, request: Request) -> tuple[RouteMatch, Endpoint]:
        scope = request.scope
        facts = request_facts(scope)
        facts.route = "unknown"
        match = match_route(raw_path_of(scope))
        if match is None:
            raise NotFound(f"No such endpoint: {request.method} {scope['path']}")
        facts.route = match.endpoint
        endpoint = ENDPOINTS[match.endpoint]
        if request.method not in endpoint.methods:
            raise MethodNotAllowed(headers={"Allow": ", ".join(sorted(endpoint.methods))})
        return match, endpoint

    async def _authenticate(self, request: Request, match: RouteMatch, endpoint: Endpoint) -> Call:
        """The call of the principal the Authorization header names (a refused token is
        audited and raised)."""
        found = services(request)
        attempted = endpoint.audited_as(request.method)
        try:
            principal = await self._principal(request, match)
        except TokenRefused as refused:
            record = _audit_record(request, attempted, ANONYMOUS, match)
            record.decision, record.status, record.reason = "deny", refused.status, refused.reason
            record.token_id = refused.token_id
            await found.audit.emit([record])
            raise
        request_facts(request.scope).principal = principal.name
        record = _audit_record(request, attempted, principal, match)
        return Call(request, match, principal, found, record)

    async def _principal(self, request: Request, match: RouteMatch) -> Principal:
        """Who the request acts as: the principal of its bearer token (anonymous without)."""
        authorization = request.headers.get("authorization")
        return await services(request).authenticator.authenticate(authorization)

    async def _authorize(self, call: Call, endpoint: Endpoint) -> None:
        """Apply the table: users-only endpoints, then the platform or repo action."""
        principal = call.principal
        if endpoint.users_only and principal.kind != "user":
            refusal: HubError = (
                AuthenticationRequired() if principal.is_anonymous else Forbidden("Users only")
            )
            raise refuse(refusal, f"{principal.kind} on a users-only endpoint")
        action = endpoint.actions[call.request.method]
        if action in PLATFORM_ACTIONS:
            await _authorize_platform(call, action)
        elif action in ACTIONS:
            assert isinstance(action, str)
            if call.route.ref is None and call.route.project is None:
                await _name_repo_from_body(call)
            await _authorize_repo(call, action)

    async def _run_and_audit(
        self, call: Call, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Authorize, run the handler and send its answer. The record is emitted for every
        request the table audits and for every refusal, wherever it was decided."""
        record = call.record
        emit = call.request.method in endpoint.audited
        response: Response | StreamResponse | None = None
        try:
            _check_declared_length(call.request, endpoint)
            await self._authorize(call, endpoint)
            response = await _serve(call, endpoint)
            await response(scope, receive, send)
        except Refused as refused:
            # The refusal's reason first, then what the handler noted about the request.
            emit = True
            reason, noted = refused.decision.reason, record.reason
            record.decision, record.status = "deny", refused.error.status
            record.reason = f"{reason} ({noted})" if noted else reason
            raise refused.error from None
        except HubError as error:
            record.status = error.status
            noted = record.reason
            record.reason = f"{error.message} ({noted})" if noted else error.message
            if error.status in (401, 403):
                record.decision = "deny"
            emit = emit or record.decision == "deny"
            raise
        except BaseException as error:
            record.status, record.reason = 500, type(error).__name__
            raise
        finally:
            if response is not None:
                _describe_response(record, response)
            if emit:
                # Never suspends while the queue has room, so it runs even during cancellation.
                await call.services.audit.emit([record])


def _describe_response(record: AuditRecord, response: Response | StreamResponse) -> None:
    """The outcome of a sent response: its status and how much of it went out."""
    if isinstance(response, StreamResponse):
        record.status = response.status
        record.bytes_sent = response.bytes_sent
        if not response.completed:
            record.reason = "incomplete: the client disconnected or the stream broke"
    else:
        record.status = response.status_code
        record.bytes_sent = len(response.body)


async def _name_repo_from_body(call: Call) -> None:
    """Create and delete name their repo in the body; no repo may be created or deleted
    anonymously, so an anonymous caller is refused before a byte of it is read."""
    if call.principal.is_anonymous:
        reason = "anonymous caller on an endpoint that names its repo in the body"
        raise refuse(AuthenticationRequired(), reason)
    if call.route.endpoint == "move_repo":
        ref = await hosted.moved_repo_from_body(call.request)
    else:
        ref = await hosted.repo_from_body(call.request, call.principal)
    named = dataclasses.replace(call.route, ref=ref)
    call.route = named
    _name_target(call.record, named)


async def _authorize_repo(call: Call, action: Action, *, moved: bool = False) -> None:
    """Check `action` on the route's repo (or project); choose its store. Leaves the repo in
    canonical form on `call.route`: the project's own spelling of the namespace, a hosted
    repo's stored spelling, or the case-folded upstream id of a proxied repo (the cache key).
    `moved`: the repo is the id upstream answered with for another name."""
    match, found = call.route, call.services
    snapshot = found.authenticator.snapshot
    hosted_ref, visibility = None, PUBLIC_REPO
    if match.ref is not None and not moved:
        follow = match.endpoint != "create_repo"
        hosted_ref, visibility = await hosted.hosted_repo(call, match.ref, follow_moves=follow)
    decide = authorize_moved if moved else authorize
    decision: Decision = decide(
        call.principal,
        action,
        (hosted_ref or match.ref).repo_id if match.ref else f"{match.project}/",
        snapshot,
        require_auth=found.settings.require_auth,
        repo=visibility,
    )
    enforce(decision)
    project = call.project = decision.project
    if match.ref is None:
        if project is not None:
            call.route = dataclasses.replace(match, project=project.name)
        return
    ref = match.ref
    namespace, _, name = ref.repo_id.rpartition("/")
    if project is not None and project.kind == "hosted":
        assert hosted_ref is not None
        call.store = found.hosted
        call.route = dataclasses.replace(match, ref=hosted_ref)
        return
    call.store = found.proxied
    if project is not None and canonical_name(namespace) == canonical_name(project.name):
        # A proxy project may mirror an upstream namespace under another name.
        ref = RepoRef(ref.repo_type, f"{project.upstream}/{name}")
    call.route = dataclasses.replace(match, ref=ref.canonical)


async def _authorize_platform(call: Call, action: PlatformAction) -> None:
    """Check a platform action; what the caller may review goes to `call.within`."""
    decision = authorize_platform(call.principal, action, call.snapshot)
    call.within = enforce(decision).within


async def _serve(call: Call, endpoint: Endpoint) -> Response | StreamResponse:
    """Run the handler; when upstream answers for another repo (a rename), authorize that
    repo and ask again, so no byte of an unauthorized repo is ever served. Errors are given
    the shape the caller must see (`authz.as_seen_by`); one reshaped to hide a repo is a
    refusal, and audited as one."""
    action = endpoint.actions[call.request.method]
    try:
        for _rename in range(MAX_RENAMES + 1):
            try:
                return await endpoint.handler(call)
            except RepoMoved as moved:
                if call.route.ref is None or action not in ACTIONS:
                    raise
                assert isinstance(action, str)
                renamed = RepoRef(call.route.ref.repo_type, moved.repo_id)
                call.route = dataclasses.replace(call.route, ref=renamed)
                await _authorize_repo(call, action, moved=True)
        raise UpstreamUnavailable("Upstream renamed the repo too many times")
    except HubError as error:
        seen = as_seen_by(call.principal, error)
        if seen is error:
            raise
        call.record.decision = "deny"
        raise seen from error
