"""Pages outside any one repo: the repo listings (`/`, `/models`, `/{namespace}`), sign in
and sign out.

Listings show hosted repos through the listing API's own filter (`hosted.readable_hosted_repos`)
and cached upstream repos through `authz.readable`: nobody sees a repo they could not read.
"""

from dataclasses import dataclass

from starlette.responses import RedirectResponse, Response

from hubproxy.auth.authz import PUBLIC_REPO, Refused, readable
from hubproxy.constants import REPO_TYPES, RepoType
from hubproxy.errors import BadRequest, NotFound, TokenRefused
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.hosted import readable_hosted_repos
from hubproxy.naming import RepoRef
from hubproxy.web import sessions
from hubproxy.web.dispatch_support import add_cookie, form_value
from hubproxy.web.render import page

# A listing shows at most this many repos of each kind (narrow it with the filters).
MAX_LISTED = 500


@dataclass(frozen=True, slots=True)
class Listed:
    """A repo as listings show it."""

    ref: RepoRef
    kind: str  # "hosted" or "cached"
    private: bool = False
    last_modified: str = ""
    tags: tuple[str, ...] = ()
    cached_bytes: int = 0


def _types(call: Call) -> list[RepoType]:
    if call.route.listed_type is not None:
        return [call.route.listed_type]
    wanted = call.request.query_params.get("type", "")
    if not wanted:
        return list(REPO_TYPES)
    if wanted not in REPO_TYPES:
        raise BadRequest(f"'type' must be one of {', '.join(REPO_TYPES)}")
    return [wanted]


async def _hosted(
    call: Call, types: list[RepoType], project: str | None, search: str
) -> list[Listed]:
    try:
        records = await readable_hosted_repos(call, types, project, search)
    except Refused:
        return []  # not a hosted project the caller may read: nothing hosted to list
    listed = []
    for record in records[:MAX_LISTED]:
        summary = await call.services.hosted.summary(record)
        listed.append(
            Listed(
                record.ref,
                "hosted",
                record.private,
                str(summary.get("lastModified", "")),
                tuple(str(tag) for tag in summary.get("tags", [])),
            )
        )
    return listed


async def _cached(
    call: Call, types: list[RepoType], project: str | None, search: str
) -> list[Listed]:
    cache = call.services.cache
    if cache is None:
        return []
    usages = {
        usage.repo_id: usage
        for usage in await cache.list_repos()
        if usage.repo_type in types
        and search.lower() in usage.repo_id.lower()
        and (project is None or usage.repo_id.lower().startswith(project.lower() + "/"))
        and usage.files
    }
    allowed = readable(
        call.principal,
        dict.fromkeys(usages, PUBLIC_REPO),
        call.snapshot,
        require_auth=call.settings.require_auth,
    )
    return [
        Listed(
            RepoRef(usages[repo_id].repo_type, repo_id),  # type: ignore[arg-type]
            "cached",
            cached_bytes=usages[repo_id].cached_bytes,
        )
        for repo_id in allowed[:MAX_LISTED]
    ]


async def _repos(call: Call, project: str | None) -> list[Listed]:
    """The repos a listing shows, with the query's filters applied."""
    query = call.request.query_params
    types = _types(call)
    search, tag = query.get("search", ""), query.get("tag", "")
    project = project or query.get("project") or None
    repos = await _hosted(call, types, project, search) + await _cached(
        call, types, project, search
    )
    return [repo for repo in repos if tag in repo.tags] if tag else repos


def _listing(call: Call, repos: list[Listed], title: str) -> Response:
    query = call.request.query_params
    filters = {name: query.get(name, "") for name in ("type", "project", "tag", "search")}
    return page(
        call,
        "listing.html",
        title=title,
        repos=repos,
        filters=filters,
        fixed_type=call.route.listed_type,
        namespace=call.route.project if call.route.endpoint == "page_namespace" else None,
    )


async def home(call: Call) -> Response:
    """`/` and `/models` & co.: the repos the viewer may read, filtered."""
    listed_type = call.route.listed_type
    title = f"{listed_type.capitalize()}s" if listed_type else "Repos"
    return _listing(call, await _repos(call, None), title)


async def namespace(call: Call) -> Response:
    """`/{namespace}`: a project's or user's repos (and cached repos of an upstream one). A
    name that is neither, with nothing cached the viewer may read, is a 404."""
    name = call.route.project
    assert name is not None
    repos = await _repos(call, name)
    if not repos and call.snapshot.project_of(name) is None:
        raise NotFound(f"No project, user or cached namespace {name!r}")
    return _listing(call, repos, name)


def _next_path(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a URL)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login(call: Call) -> Response:
    """`/login`: a form taking a token (GET); checks it and starts a session (POST)."""
    request = call.request
    if request.method != "POST":
        return page(
            call, "login.html", title="Sign in", next=_next_path(request.query_params.get("next"))
        )
    secret = form_value(call, "token").strip()
    target = _next_path(form_value(call, "next"))
    authenticator = call.services.authenticator
    try:
        principal = await authenticator.authenticate(f"Bearer {secret}")
        if principal.is_anonymous:
            raise TokenRefused("not a hubproxy token")
    except TokenRefused as refused:
        record = call.record
        record.decision, record.status, record.reason = (
            "deny",
            401,
            f"web sign-in: {refused.reason}",
        )
        record.token_id = refused.token_id
        return page(
            call, "login.html", status=401, title="Sign in", next=target,
            error="That token is not valid (unknown, revoked or expired).",
        )  # fmt: skip
    assert principal.token_id is not None
    record = call.record
    record.actor_kind, record.actor_name = principal.kind, principal.name
    record.token_id, record.reason = principal.token_id, "web sign-in"
    response = RedirectResponse(target, status_code=303)
    lifetime = int(call.settings.web_session_lifetime)
    cookie = await sessions.session_cookie(call.services.signer, principal.token_id)
    add_cookie(call, sessions.SESSION_COOKIE, cookie, max_age=lifetime)
    # A new CSRF secret for the new session.
    add_cookie(call, sessions.CSRF_COOKIE, sessions.new_nonce(), max_age=None)
    return response


async def logout(call: Call) -> Response:
    """`/logout` (POST): the session cookie is cleared."""
    add_cookie(call, sessions.SESSION_COOKIE, "", max_age=0)
    return RedirectResponse("/", status_code=303)
