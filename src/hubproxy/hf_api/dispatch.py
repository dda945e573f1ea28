"""One entry point for every Hub URL: match, authenticate, authorize, call the handler, audit.

The route table below is the single place that says what each endpoint does to a repo
(`auth.roles` actions, by method) and what it is recorded as in the audit log. The dispatcher
checks that action centrally before any handler runs; handlers never check permissions.
Platform administration endpoints name a platform action instead (`administer`, `review`),
decided by `authz.authorize_platform`; they are audited under the admin CLI's action names.
"""

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.authn import TokenRefused
from hubproxy.auth.authz import (
    Decision,
    Refused,
    as_seen_by,
    authorize,
    authorize_moved,
    authorize_platform,
)
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.auth.roles import (
    ACTIONS,
    ADMINISTER,
    CREATE_REPO,
    DELETE_REPO,
    MANAGE_MEMBERS,
    MANAGE_REFS,
    PLATFORM_ACTIONS,
    READ,
    REVIEW,
    WRITE,
    Action,
    PlatformAction,
)
from hubproxy.constants import (
    HEADER_CACHE_STATUS,
    HEADER_LINKED_ETAG,
    HEADER_REPO_COMMIT,
    HEADER_STALE,
)
from hubproxy.errors import (
    AuthenticationRequired,
    Forbidden,
    HubError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RepoMoved,
    UpstreamUnavailable,
)
from hubproxy.hf_api import (
    admin,
    admin_audit,
    hosted,
    lfs,
    projects,
    repos,
    resolve,
    tokens,
    tree,
    users,
)
from hubproxy.hf_api.bodies import MAX_JSON_BYTES, declared_length
from hubproxy.hf_api.context import Services, services
from hubproxy.hf_api.routing import RouteMatch, match_route
from hubproxy.hf_api.streaming import StreamResponse
from hubproxy.naming import RepoRef, canonical_name

Handler = Callable[[Request, RouteMatch], Awaitable[Response | StreamResponse]]

_READ: dict[str, Action | None] = {"GET": READ, "HEAD": READ}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Hub endpoint: handler, the repo action of each method, and audit names by method."""

    handler: Handler
    actions: Mapping[str, Action | PlatformAction | None]
    audited: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Only for users (not anonymous callers, not robots): self-service endpoints.
    users_only: bool = False
    # What a refused request is audited as, when it is not audited when allowed.
    denied_as: str = "read"
    # The largest body the handler reads; a larger declared Content-Length is refused (413)
    # before anything is read. None: the handler streams the body and bounds it itself.
    max_body: int | None = MAX_JSON_BYTES

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self.actions)


ENDPOINTS: dict[str, Endpoint] = {
    "resolve": Endpoint(resolve.resolve, _READ, {"GET": "download"}, denied_as="download"),
    "repo_info": Endpoint(repos.repo_info, _READ),
    "refs": Endpoint(repos.refs, _READ),
    "commits": Endpoint(repos.commits, _READ),
    "tree": Endpoint(tree.tree, _READ),
    "paths_info": Endpoint(tree.paths_info, {"POST": READ}, max_body=tree.MAX_BODY_BYTES),
    "create_repo": Endpoint(hosted.create_repo, {"POST": CREATE_REPO}, {"POST": "repo_create"}),
    "delete_repo": Endpoint(hosted.delete_repo, {"DELETE": DELETE_REPO}, {"DELETE": "repo_delete"}),
    # Steps of an upload: the PUT of LFS bytes and the commit are what the audit log records.
    "preupload": Endpoint(
        hosted.preupload, {"POST": WRITE}, denied_as="upload", max_body=hosted.MAX_LISTING_BYTES
    ),
    # NDJSON read line by line, each line bounded (`hub.commits`).
    "commit": Endpoint(hosted.commit, {"POST": WRITE}, {"POST": "commit"}, max_body=None),
    "xet_write_token": Endpoint(hosted.xet_write_token, {"GET": WRITE}, denied_as="upload"),
    "lfs_batch": Endpoint(
        lfs.batch, {"POST": WRITE}, denied_as="upload", max_body=hosted.MAX_LISTING_BYTES
    ),
    # Signed links: the link itself is the authorization (clients send no token); the body
    # is bounded by the size the link names.
    "lfs_upload": Endpoint(lfs.upload, {"PUT": None}, {"PUT": "upload"}, max_body=None),
    "lfs_verify": Endpoint(lfs.verify, {"POST": WRITE}, denied_as="upload"),
    "validate_yaml": Endpoint(hosted.validate_yaml, {"POST": None}),
    # Shows only what the caller may read (filtered in the handler).
    "list_repos": Endpoint(hosted.list_repos, {"GET": None}),
    "branch": Endpoint(
        hosted.branch,
        {"POST": WRITE, "DELETE": MANAGE_REFS},
        {"POST": "ref_create", "DELETE": "ref_delete"},
    ),
    "tag": Endpoint(
        hosted.tag,
        {"POST": MANAGE_REFS, "DELETE": MANAGE_REFS},
        {"POST": "ref_create", "DELETE": "ref_delete"},
    ),
    "project_members": Endpoint(projects.members, {"GET": MANAGE_MEMBERS}),
    "project_member": Endpoint(
        projects.member,
        {"PUT": MANAGE_MEMBERS, "DELETE": MANAGE_MEMBERS},
        {"PUT": "member_add", "DELETE": "member_remove"},
    ),
    "project_robots": Endpoint(
        projects.robots, {"GET": MANAGE_MEMBERS, "POST": MANAGE_MEMBERS}, {"POST": "robot_create"}
    ),
    "project_robot": Endpoint(
        projects.robot, {"DELETE": MANAGE_MEMBERS}, {"DELETE": "robot_revoke"}
    ),
    "tokens": Endpoint(
        tokens.tokens, {"GET": None, "POST": None}, {"POST": "token_create"}, users_only=True
    ),
    "token": Endpoint(tokens.token, {"DELETE": None}, {"DELETE": "token_revoke"}, users_only=True),
    "whoami": Endpoint(users.whoami, {"GET": None}, {"GET": "login"}),
    # Platform administration: what `hubproxy admin --endpoint` calls.
    "admin_users": Endpoint(
        admin.users, {"GET": ADMINISTER, "POST": ADMINISTER}, {"POST": "user_create"}
    ),
    "admin_user_disabled": Endpoint(
        admin.user_disabled,
        {"PUT": ADMINISTER, "DELETE": ADMINISTER},
        {"PUT": "user_disable", "DELETE": "user_enable"},
    ),
    "admin_projects": Endpoint(
        admin.projects, {"GET": REVIEW, "POST": ADMINISTER}, {"POST": "project_create"}
    ),
    "admin_project": Endpoint(admin.project, {"DELETE": ADMINISTER}, {"DELETE": "project_delete"}),
    "admin_robots": Endpoint(admin.robots, {"GET": REVIEW}),
    "admin_policy": Endpoint(
        admin.policy, {"GET": ADMINISTER, "PATCH": ADMINISTER}, {"PATCH": "policy_change"}
    ),
    "admin_audit": Endpoint(
        admin_audit.audit, {"GET": REVIEW, "DELETE": ADMINISTER}, {"DELETE": "audit_prune"}
    ),
    "agent_harnesses": Endpoint(users.agent_harnesses, {"GET": None}),
    "telemetry": Endpoint(users.telemetry, {"GET": None, "HEAD": None, "POST": None}),
}


def _audit_record(
    request: Request, action: str, principal: Principal, match: RouteMatch
) -> AuditRecord:
    ref = match.ref
    return AuditRecord(
        action,
        actor_kind=principal.kind,
        actor_name=principal.name,
        token_id=principal.token_id,
        repo_type=ref.repo_type if ref else None,
        repo_id=ref.repo_id if ref else match.project,
        revision=match.revision,
        path=match.path or None,
        request_id=request.scope.get("state", {}).get("request_id"),
        client=(request.scope.get("client") or ("", 0))[0] or None,
        user_agent=request.headers.get("user-agent"),
        method=request.method,
        route=match.endpoint,
    )


def _describe_response(record: AuditRecord, response: Response | StreamResponse) -> None:
    """Copy the outcome of a sent response into `record`."""
    if isinstance(response, StreamResponse):
        headers = {name.decode(): value.decode("latin-1") for name, value in response.headers}
        record.status = response.status
        record.bytes_sent = response.bytes_sent
        record.commit_sha = headers.get(HEADER_REPO_COMMIT.lower())
        # A branch answered from its last known commit because upstream failed: "stale".
        stale = headers.get(HEADER_STALE.lower()) == "true"
        record.cache = "stale" if stale else headers.get(HEADER_CACHE_STATUS.lower())
        linked = headers.get(HEADER_LINKED_ETAG.lower())
        record.sha256 = linked.strip('"') if linked else None
        if not response.completed:
            record.reason = "incomplete: the client disconnected or the stream broke"
    else:
        record.status = response.status_code
        record.bytes_sent = len(response.body)


# How many renames in a row upstream may answer with before hubproxy gives up.
MAX_RENAMES = 3


async def _authorize(
    request: Request,
    services_: Services,
    principal: Principal,
    match: RouteMatch,
    action: Action,
    *,
    moved: bool = False,
) -> RouteMatch:
    """Check `action` on the route's repo (or project); choose its store. Returns the match
    to serve, its repo in canonical form: the project's own spelling of the namespace, a
    hosted repo's stored spelling, or the case-folded upstream id of a proxied repo (the
    cache key). `moved`: the repo is the id upstream answered with for another name."""
    if match.ref is None and match.project is None:
        if principal.is_anonymous:
            # The repo is named in the body, but no repo may be created or deleted anonymously:
            # refused before a byte of the body is read.
            reason = "anonymous caller on an endpoint that names its repo in the body"
            raise await _denied(
                request, services_, principal, match, AuthenticationRequired(), reason
            )
        match = dataclasses.replace(match, ref=await hosted.repo_from_body(request))
    snapshot = services_.authenticator.snapshot
    decide = authorize_moved if moved else authorize
    decision: Decision = decide(
        principal,
        action,
        match.ref.repo_id if match.ref else f"{match.project}/",
        snapshot,
        require_auth=services_.settings.require_auth,
    )
    if not decision.allowed:
        assert decision.error is not None
        raise await _denied(request, services_, principal, match, decision.error, decision.reason)
    project = decision.project
    request.state.project = project
    if match.ref is None:
        if project is not None:
            match = dataclasses.replace(match, project=project.name)
        return match
    ref = match.ref
    namespace, _, name = ref.repo_id.rpartition("/")
    if project is not None and project.kind == "hosted":
        request.state.store = services_.hosted
        spelled = RepoRef(ref.repo_type, f"{project.name}/{name}")
        return dataclasses.replace(match, ref=await services_.hub.repos.stored_ref(spelled))
    request.state.store = services_.proxied
    if project is not None and canonical_name(namespace) == canonical_name(project.name):
        # A proxy project may mirror an upstream namespace under another name.
        ref = RepoRef(ref.repo_type, f"{project.upstream}/{name}")
    return dataclasses.replace(match, ref=ref.canonical)


async def _serve(
    request: Request,
    services_: Services,
    principal: Principal,
    served: RouteMatch,
    endpoint: "Endpoint",
) -> Response | StreamResponse:
    """Run the handler; when upstream answers for another repo (a rename), authorize that
    repo and ask again, so no byte of an unauthorized repo is ever served. Errors are given
    the shape the caller must see (`authz.as_seen_by`)."""
    action = endpoint.actions[request.method]
    try:
        for _rename in range(MAX_RENAMES + 1):
            try:
                return await endpoint.handler(request, served)
            except RepoMoved as moved:
                if served.ref is None or action not in ACTIONS:
                    raise
                assert isinstance(action, str)
                renamed = RepoRef(served.ref.repo_type, moved.repo_id)
                served = await _authorize(
                    request,
                    services_,
                    principal,
                    dataclasses.replace(served, ref=renamed),
                    action,
                    moved=True,
                )
        raise UpstreamUnavailable("Upstream renamed the repo too many times")
    except HubError as error:
        seen = as_seen_by(principal, error)
        if seen is error:
            raise
        raise seen from error


async def _authorize_platform(
    request: Request,
    services_: Services,
    principal: Principal,
    match: RouteMatch,
    action: PlatformAction,
) -> None:
    """Check a platform action; what the caller may review goes to `request.state.within`."""
    decision = authorize_platform(principal, action, services_.authenticator.snapshot)
    if not decision.allowed:
        assert decision.error is not None
        raise await _denied(request, services_, principal, match, decision.error, decision.reason)
    request.state.within = decision.within


async def _denied(
    request: Request,
    services_: Services,
    principal: Principal,
    match: RouteMatch,
    error: HubError,
    reason: str,
    token_id: str | None = None,
) -> HubError:
    """Audit a refusal (as the action the request attempted); returns `error` to raise."""
    endpoint = ENDPOINTS[match.endpoint]
    attempted = endpoint.audited.get(request.method, endpoint.denied_as)
    record = _audit_record(request, attempted, principal, match)
    record.decision, record.status, record.reason = "deny", error.status, reason
    record.token_id = token_id or principal.token_id
    await services_.audit.emit([record])
    return error


def _check_declared_length(request: Request, endpoint: Endpoint) -> None:
    """413 for a Content-Length over the endpoint's cap, before any of the body is read.
    Chunked bodies are counted as they are read (`bodies.bounded_body`)."""
    declared = request.headers.get("content-length")
    if endpoint.max_body is None or declared is None:
        return
    if declared_length(declared) > endpoint.max_body:
        raise PayloadTooLarge(f"Request body larger than {endpoint.max_body} bytes")


class HubEndpoint:
    """A starlette endpoint (ASGI app) that routes on `scope["raw_path"]`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        root_path = scope.get("root_path", "").encode()
        if root_path and raw_path.startswith(root_path):
            raw_path = raw_path[len(root_path) :]
        match = match_route(raw_path)
        state = scope.setdefault("state", {})
        state["route"] = match.endpoint if match else "unknown"
        if match is None:
            raise NotFound(f"No such endpoint: {request.method} {scope['path']}")
        endpoint = ENDPOINTS[match.endpoint]
        if request.method not in endpoint.methods:
            raise MethodNotAllowed(headers={"Allow": ", ".join(sorted(endpoint.methods))})
        found = services(request)
        try:
            principal = await found.authenticator.authenticate(request.headers.get("authorization"))
        except TokenRefused as refused:
            await _denied(
                request, found, ANONYMOUS, match, refused, refused.reason, refused.token_id
            )
            raise
        state["principal"] = principal.name
        request.state.identity = principal
        _check_declared_length(request, endpoint)
        if endpoint.users_only and principal.kind != "user":
            refusal: HubError = (
                AuthenticationRequired() if principal.is_anonymous else Forbidden("Users only")
            )
            reason = f"{principal.kind} on a users-only endpoint"
            raise await _denied(request, found, principal, match, refusal, reason)
        action = endpoint.actions[request.method]
        served = match
        if action in PLATFORM_ACTIONS:
            await _authorize_platform(request, found, principal, match, action)
        elif action in ACTIONS:
            served = await _authorize(request, found, principal, match, action)
        audited = endpoint.audited.get(request.method)
        if audited is None:
            try:
                answer = await _serve(request, found, principal, served, endpoint)
            except Refused as refused:
                # Decided in auth/ while the handler ran: audited like any other denial.
                error, reason = refused.error, refused.decision.reason
                raise await _denied(request, found, principal, match, error, reason) from None
            await answer(scope, receive, send)
            return
        # The repo as the client named it (create/delete name it in the body).
        named = served if match.ref is None else match
        record = _audit_record(request, audited, principal, named)
        response: Response | StreamResponse | None = None
        try:
            response = await _serve(request, found, principal, served, endpoint)
            await response(scope, receive, send)
        except Refused as refused:
            record.decision, record.status = "deny", refused.error.status
            # The refusal's reason first, then what the handler noted about the request.
            fields = scope["state"].setdefault("audit_fields", {})
            noted = fields.get("reason")
            reason = refused.decision.reason
            fields["reason"] = f"{reason} ({noted})" if noted else reason
            raise refused.error from None
        except HubError as error:
            record.status, record.reason = error.status, error.message
            if error.status in (401, 403):
                record.decision = "deny"
            raise
        except BaseException as error:
            record.status, record.reason = 500, type(error).__name__
            raise
        finally:
            if response is not None:
                _describe_response(record, response)
            # What only the handler knows (a robot named in the body, say).
            for name, value in scope["state"].get("audit_fields", {}).items():
                setattr(record, name, value)
            # Never suspends while the queue has room, so it runs even during cancellation.
            await found.audit.emit([record])
