"""Write endpoints of the private hub: create/delete repo, preupload, commit, branches, tags.

Authorization has already happened when a handler runs (the dispatcher derives the action
from the route, and for create/delete the repo from the JSON body). Proxied namespaces and
proxy projects never get here: they are read-only. Wire shapes: hf-protocol.md §5 and §6.
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hubproxy.auth.authz import authorize_listing, enforce, readable
from hubproxy.constants import REPO_TYPES, URL_PREFIX_BY_REPO_TYPE, RepoType
from hubproxy.errors import BadRequest, Conflict, NotImplementedYet
from hubproxy.hf_api.bodies import body_stream, json_object
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import whole_number_query
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


def repo_url(call: Call, ref: RepoRef) -> str:
    """The repo's web URL as clients parse it (`{endpoint}/[datasets/]namespace/name`)."""
    return f"{call.base_url}/{URL_PREFIX_BY_REPO_TYPE[ref.repo_type]}{ref.repo_id}"


def refuse_pull_requests(request: Request) -> None:
    if request.query_params.get("create_pr", "").lower() in ("1", "true"):
        raise NotImplementedYet("Pull requests are not supported by hosted repos yet")


async def create_repo(call: Call) -> Response:
    payload = await json_object(call.request)
    project = call.project
    assert project is not None
    wants_private = payload.get("private") is True or payload.get("visibility") == "private"
    if project.public and wants_private:
        # Visibility is decided per project; a "private" repo here would be readable by all.
        raise BadRequest(
            f"Project {project.name!r} is public: create private repos in a private project"
        )
    url = repo_url(call, call.repo)
    try:
        await call.hub.create_repo(
            call.repo, private=not project.public, creator=call.principal.name
        )
    except Conflict as error:
        # `create_repo(exist_ok=True)` reads the URL from the 409 body.
        raise Conflict(error.message, details={"url": url}) from None
    return JSONResponse({"url": url, "name": call.repo.repo_id, "id": call.repo.repo_id})


async def delete_repo(call: Call) -> Response:
    await call.hub.delete_repo(call.repo)
    return PlainTextResponse("OK")


async def preupload(call: Call) -> Response:
    refuse_pull_requests(call.request)
    payload = await json_object(call.request, max_bytes=MAX_LISTING_BYTES)
    files = payload.get("files")
    if not isinstance(files, list):
        raise BadRequest("Request body needs a 'files' list")
    answer = await call.hub.preupload(call.repo, call.revision, files)
    return JSONResponse(answer)


async def commit(call: Call) -> Response:
    refuse_pull_requests(call.request)
    created = await call.hub.commit(
        call.repo, call.revision, body_stream(call.request), call.principal.name
    )
    call.record.commit_sha = created.sha
    return JSONResponse(
        {
            "success": True,
            "commitOid": created.sha,
            "commitUrl": f"{repo_url(call, call.repo)}/commit/{created.sha}",
            "hookOutput": "",
        }
    )


async def branch(call: Call) -> Response:
    if call.request.method == "DELETE":
        await call.hub.delete_branch(call.repo, call.revision)
        return PlainTextResponse("OK")
    payload = await json_object(call.request)
    starting_point = payload.get("startingPoint")
    if starting_point is not None and not isinstance(starting_point, str):
        raise BadRequest("'startingPoint' must be a revision")
    await call.hub.create_branch(call.repo, call.revision, starting_point)
    return PlainTextResponse("OK")


async def tag(call: Call) -> Response:
    if call.request.method == "DELETE":
        await call.hub.delete_tag(call.repo, call.revision)
        return PlainTextResponse("OK")
    payload = await json_object(call.request)
    name = payload.get("tag")
    if not isinstance(name, str) or not name:
        raise BadRequest("Request body needs a 'tag'")
    await call.hub.create_tag(call.repo, call.revision, name)
    call.record.path = name
    return PlainTextResponse("OK")


async def list_repos(call: Call) -> Response:
    """`list_models(author=..., search=..., limit=...)` & co. over hosted projects: the repos
    the caller may read. Upstream repos are not listed through hubproxy."""
    query = call.request.query_params
    search = query.get("search", "").lower()
    limit = whole_number_query(call.request, "limit")
    snapshot, caller = call.snapshot, call.principal
    require_auth = call.settings.require_auth
    decision = enforce(
        authorize_listing(caller, query.get("author"), snapshot, require_auth=require_auth)
    )
    author = decision.project.name if decision.project else None
    hosted = {name for name, project in snapshot.projects.items() if project.kind == "hosted"}
    records = {
        record.ref.repo_id: record
        for record in await call.hub.repos.list_repos(author)
        if record.ref.repo_type == call.route.listed_type
        and record.ref.repo_id.split("/")[0] in hosted
        and search in record.ref.repo_id.lower()
    }
    visible = readable(caller, records, snapshot)
    if limit is not None:
        visible = visible[:limit]
    hosted_store = call.services.hosted
    return JSONResponse([await hosted_store.summary(records[repo_id]) for repo_id in visible])


async def validate_yaml(call: Call) -> Response:
    """README metadata is not validated; clients need a JSON answer (hf-protocol.md §6.1)."""
    answer: dict[str, Any] = {"errors": [], "warnings": []}
    return JSONResponse(answer)
