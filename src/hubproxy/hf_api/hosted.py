"""Write endpoints of the private hub: create/delete repo, preupload, commit, branches, tags.

Authorization has already happened when a handler runs (the dispatcher derives the action
from the route, and for create/delete the repo from the JSON body). Proxied namespaces and
proxy projects never get here: they are read-only. Wire shapes: hf-protocol.md §5 and §6.
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hubproxy.auth.accounts import Project
from hubproxy.auth.authz import authorize, readable
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import READ
from hubproxy.constants import REPO_TYPES, URL_PREFIX_BY_REPO_TYPE, RepoType
from hubproxy.errors import AuthenticationRequired, BadRequest, Conflict, NotImplementedYet
from hubproxy.hf_api.bodies import body_stream, json_object
from hubproxy.hf_api.context import public_base_url, services
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hf_api.routing import RouteMatch
from hubproxy.hub.service import HostedRepoWriter
from hubproxy.naming import RepoRef, repo_ref

# preupload and LFS batch bodies list up to thousands of files.
MAX_LISTING_BYTES = 16 * 1024 * 1024


async def repo_from_body(request: Request) -> RepoRef:
    """The repo a `/api/repos/create|delete` body names: `{"name", "organization", "type"}`."""
    payload = await json_object(request)
    if not isinstance(payload.get("name"), str):
        raise BadRequest("Request body needs a 'name'")
    name: str = payload["name"]
    organization = payload.get("organization")
    if organization is not None and not isinstance(organization, str):
        raise BadRequest("'organization' must be a string")
    repo_type = payload.get("type") or "model"
    if repo_type not in REPO_TYPES:
        raise BadRequest(f"Unknown repo type {repo_type!r}")
    typed: RepoType = repo_type
    repo_id = f"{organization}/{name}" if organization and "/" not in name else name
    if "/" not in repo_id:
        raise BadRequest("Name the repo 'namespace/name' (a hosted project is the namespace)")
    return repo_ref(typed, repo_id)


def hub(request: Request) -> HostedRepoWriter:
    return services(request).hub


def principal(request: Request) -> Principal:
    found: Principal = request.state.identity
    return found


def repo_url(request: Request, ref: RepoRef) -> str:
    """The repo's web URL as clients parse it (`{endpoint}/[datasets/]namespace/name`)."""
    return f"{public_base_url(request)}/{URL_PREFIX_BY_REPO_TYPE[ref.repo_type]}{ref.repo_id}"


def _refuse_pull_requests(request: Request) -> None:
    if request.query_params.get("create_pr", "").lower() in ("1", "true"):
        raise NotImplementedYet("Pull requests are not supported by hosted repos yet")


async def create_repo(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    payload = await json_object(request)
    project: Project = request.state.project
    wants_private = payload.get("private") is True or payload.get("visibility") == "private"
    if project.public and wants_private:
        # Visibility is decided per project; a "private" repo here would be readable by all.
        raise BadRequest(
            f"Project {project.name!r} is public: create private repos in a private project"
        )
    url = repo_url(request, match.ref)
    try:
        await hub(request).create_repo(
            match.ref, private=not project.public, creator=principal(request).name
        )
    except Conflict as error:
        # `create_repo(exist_ok=True)` reads the URL from the 409 body.
        raise Conflict(error.message, details={"url": url}) from None
    return JSONResponse({"url": url, "name": match.ref.repo_id, "id": match.ref.repo_id})


async def delete_repo(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    await hub(request).delete_repo(match.ref)
    return PlainTextResponse("OK")


async def preupload(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    assert match.revision is not None
    _refuse_pull_requests(request)
    payload = await json_object(request, max_bytes=MAX_LISTING_BYTES)
    files = payload.get("files")
    if not isinstance(files, list):
        raise BadRequest("Request body needs a 'files' list")
    answer = await hub(request).preupload(match.ref, match.revision, files)
    headers: dict[str, str] = {}
    if any(item["uploadMode"] == "lfs" for item in answer["files"]):
        # hf_xet swallows the xet-write-token error text; clients log this warning instead.
        threshold = services(request).settings.upload_lfs_threshold
        headers["X-HF-Warning"] = (
            f"hubproxy-lfs; Files of {threshold} bytes or more are uploaded with Git LFS: with "
            "hf_xet installed, set HF_HUB_DISABLE_XET=1 (hubproxy does not accept Xet uploads)"
        )
    return JSONResponse(answer, headers=headers)


async def commit(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    assert match.revision is not None
    _refuse_pull_requests(request)
    created = await hub(request).commit(
        match.ref, match.revision, body_stream(request), principal(request).name
    )
    request.state.audit_fields = {"commit_sha": created.sha}
    return JSONResponse(
        {
            "success": True,
            "commitOid": created.sha,
            "commitUrl": f"{repo_url(request, match.ref)}/commit/{created.sha}",
            "hookOutput": "",
        }
    )


async def branch(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    assert match.revision is not None
    if request.method == "DELETE":
        await hub(request).delete_branch(match.ref, match.revision)
        return PlainTextResponse("OK")
    payload = await json_object(request)
    starting_point = payload.get("startingPoint")
    if starting_point is not None and not isinstance(starting_point, str):
        raise BadRequest("'startingPoint' must be a revision")
    await hub(request).create_branch(match.ref, match.revision, starting_point)
    return PlainTextResponse("OK")


async def tag(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    assert match.revision is not None
    if request.method == "DELETE":
        await hub(request).delete_tag(match.ref, match.revision)
        return PlainTextResponse("OK")
    payload = await json_object(request)
    name = payload.get("tag")
    if not isinstance(name, str) or not name:
        raise BadRequest("Request body needs a 'tag'")
    await hub(request).create_tag(match.ref, match.revision, name)
    request.state.audit_fields = {"path": name}
    return PlainTextResponse("OK")


async def list_repos(request: Request, match: RouteMatch) -> Response:
    """`list_models(author=..., search=..., limit=...)` & co. over hosted projects: the repos
    the caller may read. Upstream repos are not listed through hubproxy."""
    found = services(request)
    query = request.query_params
    author, search = query.get("author"), query.get("search", "").lower()
    limit = whole_number_query(request, "limit")
    snapshot = found.authenticator.snapshot
    caller = principal(request)
    if caller.is_anonymous and (found.settings.require_auth or snapshot.policy.require_auth):
        raise AuthenticationRequired()
    hosted = {name for name, project in snapshot.projects.items() if project.kind == "hosted"}
    if author is not None:
        # Authors match case-insensitively; a project the caller may not read answers
        # exactly like a name that is no project at all, so private names stay unknown.
        project = snapshot.project_of(author)
        if (
            project is None
            or project.kind != "hosted"
            or not authorize(caller, READ, f"{project.name}/", snapshot).allowed
        ):
            raise NotImplementedYet(
                f"{author!r} is not a hosted project: hubproxy lists the repos of hosted"
                " projects only (upstream repos are downloaded through it, not listed)"
            )
        author = project.name
    records = {
        record.ref.repo_id: record
        for record in await found.hub.repos.list_repos(author)
        if record.ref.repo_type == match.path
        and record.ref.repo_id.split("/")[0] in hosted
        and search in record.ref.repo_id.lower()
    }
    visible = readable(caller, records, snapshot)
    if limit is not None:
        visible = visible[:limit]
    return JSONResponse([await found.hosted.summary(records[repo_id]) for repo_id in visible])


async def validate_yaml(request: Request, match: RouteMatch) -> Response:
    """README metadata is not validated; clients need a JSON answer (hf-protocol.md §6.1)."""
    answer: dict[str, Any] = {"errors": [], "warnings": []}
    return JSONResponse(answer)


async def xet_write_token(request: Request, match: RouteMatch) -> Response:
    threshold = services(request).settings.upload_lfs_threshold
    raise NotImplementedYet(
        "hubproxy does not accept Xet uploads yet: set HF_HUB_DISABLE_XET=1 to upload files of "
        f"{threshold} bytes or more through Git LFS"
    )
