"""Write endpoints of the private hub: create/delete repo, preupload, commit, branches, tags.

Authorization has already happened when a handler runs (the dispatcher derives the action
from the route, and for create/delete the repo from the JSON body). Proxied namespaces and
proxy projects never get here: they are read-only. Wire shapes: hf-protocol.md §5 and §6.
"""

from collections.abc import Collection
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hubproxy.auth.accounts import Project
from hubproxy.auth.authz import (
    PUBLIC_REPO,
    RepoVisibility,
    authorize,
    authorize_listing,
    enforce,
    readable,
)
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import CREATE_REPO
from hubproxy.constants import REPO_TYPES, URL_PREFIX_BY_REPO_TYPE, RepoType
from hubproxy.errors import BadRequest, Conflict
from hubproxy.hf_api import listings
from hubproxy.hf_api.bodies import body_stream, json_object
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hub.cards import SPACE_SDKS, validate_card
from hubproxy.hub.repos import RepoRecord
from hubproxy.naming import RepoRef, repo_ref

# preupload and LFS batch bodies list up to thousands of files.
MAX_LISTING_BYTES = 16 * 1024 * 1024


async def repo_from_body(request: Request, principal: Principal) -> RepoRef:
    """The repo a `/api/repos/create|delete` body names: `{"name", "organization", "type"}`.
    A bare name is in the caller's personal namespace, as on huggingface.co."""
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
        if principal.kind != "user":
            raise BadRequest(
                "Robots have no personal namespace: name the repo 'namespace/name'"
                " (your project is the namespace)"
            )
        repo_id = f"{principal.name}/{repo_id}"
    return repo_ref(typed, repo_id)


async def hosted_repo(
    call: Call, ref: RepoRef, *, follow_moves: bool = True
) -> tuple[RepoRef | None, RepoVisibility]:
    """The hosted repo `ref` names, as stored (any letter case; a moved repo's new name),
    with its visibility; `ref` in its project's spelling when no such repo exists (yet).
    `follow_moves=False`: a repo to create takes a moved repo's old name (as on huggingface.co).
    (None, public) when `ref` is in no hosted project."""
    namespace, _, name = ref.repo_id.rpartition("/")
    project = call.snapshot.project_of(namespace) if namespace else None
    if project is None or project.kind != "hosted":
        return None, PUBLIC_REPO
    repos = call.hub.repos
    spelled = RepoRef(ref.repo_type, f"{project.name}/{name}")
    record = await repos.find(spelled)
    if record is None and follow_moves and (target := await repos.moved_to(spelled)) is not None:
        record = await repos.find(target)
    if record is None:
        return spelled, PUBLIC_REPO
    return record.ref, RepoVisibility(record.private, record.gated)


async def moved_repo_from_body(request: Request) -> RepoRef:
    """The repo a `/api/repos/move` body moves: `{"fromRepo", "toRepo", "type"}`."""
    payload = await json_object(request)
    return _move_ref(payload, "fromRepo")


def _move_ref(payload: dict[str, Any], field: str) -> RepoRef:
    value = payload.get(field)
    if not isinstance(value, str):
        raise BadRequest(f"Request body needs a {field!r} ('namespace/name')")
    repo_type = payload.get("type") or "model"
    if repo_type not in REPO_TYPES:
        raise BadRequest(f"Unknown repo type {repo_type!r}")
    typed: RepoType = repo_type
    if "/" not in value:
        raise BadRequest(f"Invalid {field} {value!r}: expected 'namespace/name'")
    return repo_ref(typed, value)


def requested_visibility(payload: dict[str, Any]) -> bool | None:
    """Whether a create or settings body asks for a private repo (`visibility`, or `private`
    from older clients); None when it does not say."""
    visibility = payload.get("visibility")
    if visibility is not None:
        if visibility not in ("private", "public"):
            raise BadRequest(
                f"Invalid visibility {visibility!r}: hosted repos are 'private' or 'public'"
            )
        return bool(visibility == "private")
    private = payload.get("private")
    if private is not None and not isinstance(private, bool):
        raise BadRequest("'private' must be true or false")
    return private


def repo_url(call: Call, ref: RepoRef) -> str:
    """The repo's web URL as clients parse it (`{endpoint}/[datasets/]namespace/name`)."""
    return f"{call.base_url}/{URL_PREFIX_BY_REPO_TYPE[ref.repo_type]}{ref.repo_id}"


def creates_pull_request(request: Request) -> bool:
    """`?create_pr=1`: the write opens a pull request on the revision (a branch)."""
    return request.query_params.get("create_pr", "").lower() in ("1", "true")


async def create_repo(call: Call) -> Response:
    payload = await json_object(call.request)
    project = call.project
    assert project is not None
    private = requested_visibility(payload)
    check_visibility(project, private)
    url = repo_url(call, call.repo)
    try:
        await call.hub.create_repo(
            call.repo,
            private=bool(private) or not project.public,
            creator=call.principal.name,
            space_sdk=space_sdk(payload) if call.repo.repo_type == "space" else None,
        )
    except Conflict as error:
        # `create_repo(exist_ok=True)` reads the URL from the 409 body.
        raise Conflict(error.message, details={"url": url}) from None
    return JSONResponse({"url": url, "name": call.repo.repo_id, "id": call.repo.repo_id})


def space_sdk(payload: dict[str, Any]) -> str | None:
    """The `sdk` a new space is created with (huggingface_hub sends `space_sdk` as `sdk`)."""
    sdk = payload.get("sdk")
    if sdk is None:
        return None
    if sdk not in SPACE_SDKS:
        raise BadRequest(f"Invalid space SDK {sdk!r}: one of {', '.join(SPACE_SDKS)}")
    return str(sdk)


def check_visibility(project: Project, private: bool | None) -> None:
    """A private project holds private repos only; a public one (and a personal namespace)
    both kinds (a repo is public unless asked otherwise)."""
    if private is False and not project.public:
        raise BadRequest(
            f"{project.name!r} is a private project: its repos are private (a public repo"
            " needs a public project or your own namespace)"
        )


async def move_repo(call: Call) -> Response:
    """`move_repo(from_id, to_id)`: the source was authorized (delete) by the dispatcher; the
    target is authorized here as a repo to create, in a hosted namespace. The repo keeps its
    history; it becomes private in a private project; the old id leads to the new one."""
    payload = await json_object(call.request)
    wanted = _move_ref(payload, "toRepo")
    target, _ = await hosted_repo(call, wanted, follow_moves=False)
    decision = enforce(
        authorize(
            call.principal,
            CREATE_REPO,
            (target or wanted).repo_id,
            call.snapshot,
            require_auth=call.settings.require_auth,
        )
    )
    project = decision.project
    assert target is not None
    assert project is not None
    assert project.kind == "hosted"
    source = await call.hub.repos.repo(call.repo)
    call.record.reason = f"to {target.repo_id}"
    await call.hub.move_repo(call.repo, target, private=source.private or not project.public)
    return PlainTextResponse("OK")


async def repo_settings(call: Call) -> Response:
    """`update_repo_settings(private=..., gated=...)`: `{"visibility"|"private", "gated"}`."""
    payload = await json_object(call.request)
    project = call.project
    assert project is not None
    private = requested_visibility(payload)
    gated: str | None = None
    if "gated" in payload:
        value = payload["gated"]
        if value not in ("auto", "manual", False):
            raise BadRequest('\'gated\' must be "auto", "manual" or false')
        gated = value or ""
    if private is None and gated is None:
        raise BadRequest("Nothing to change: give 'visibility' (or 'private') or 'gated'")
    check_visibility(project, private)
    record = await call.hub.update_settings(call.repo, private=private, gated=gated)
    call.record.reason = f"private={record.private} gated={record.gated or 'false'}"
    return JSONResponse({"private": record.private, "gated": record.gated or False})


async def delete_repo(call: Call) -> Response:
    await call.hub.delete_repo(call.repo)
    return PlainTextResponse("OK")


async def preupload(call: Call) -> Response:
    payload = await json_object(call.request, max_bytes=MAX_LISTING_BYTES)
    files = payload.get("files")
    if not isinstance(files, list):
        raise BadRequest("Request body needs a 'files' list")
    git_ignore = payload.get("gitIgnore")
    if git_ignore is not None and not isinstance(git_ignore, str):
        raise BadRequest("'gitIgnore' must be the text of a .gitignore")
    answer = await call.hub.preupload(call.repo, call.revision, files, git_ignore)
    return JSONResponse(answer)


async def commit(call: Call) -> Response:
    """A commit to a branch or to `refs/pr/N`; `?create_pr=1`: to a new pull request on the
    branch (`pullRequestUrl` says which; the client reads N from its end)."""
    created, pull_request = await call.hub.commit(
        call.repo,
        call.revision,
        body_stream(call.request),
        call.actor,
        create_pr=creates_pull_request(call.request),
    )
    call.record.commit_sha = created.sha
    answer = {
        "success": True,
        "commitOid": created.sha,
        "commitUrl": f"{repo_url(call, call.repo)}/commit/{created.sha}",
        "hookOutput": "",
    }
    if pull_request is not None:
        answer["pullRequestUrl"] = f"{repo_url(call, call.repo)}/discussions/{pull_request}"
        call.record.reason = f"refs/pr/{pull_request}"
    return JSONResponse(answer)


async def super_squash(call: Call) -> Response:
    """`super_squash_history(repo_id, branch=..., commit_message=...)`."""
    payload = await json_object(call.request)
    message = payload.get("message", "")
    if not isinstance(message, str) or len(message) > 64 * 1024:
        raise BadRequest("'message' must be a commit message")
    sha = await call.hub.super_squash(call.repo, call.revision, message, call.actor)
    call.record.commit_sha, call.record.reason = sha, "super-squash"
    return JSONResponse({"commitOid": sha})


async def branch(call: Call) -> Response:
    if call.request.method == "DELETE":
        await call.hub.delete_branch(call.repo, call.revision, call.actor)
        return PlainTextResponse("OK")
    payload = await json_object(call.request)
    starting_point = payload.get("startingPoint")
    if starting_point is not None and not isinstance(starting_point, str):
        raise BadRequest("'startingPoint' must be a revision")
    await call.hub.create_branch(call.repo, call.revision, starting_point, call.actor)
    return PlainTextResponse("OK")


async def tag(call: Call) -> Response:
    if call.request.method == "DELETE":
        await call.hub.delete_tag(call.repo, call.revision, call.actor)
        return PlainTextResponse("OK")
    payload = await json_object(call.request)
    name = payload.get("tag")
    if not isinstance(name, str) or not name:
        raise BadRequest("Request body needs a 'tag'")
    await call.hub.create_tag(call.repo, call.revision, name, call.actor)
    call.record.path = name
    return PlainTextResponse("OK")


async def list_repos(call: Call) -> Response:
    """`list_models(author=..., search=..., filter=..., sort=..., cardData=True, limit=...)`
    & co. over hosted projects: the repos the caller may read. Upstream repos are not listed
    through hubproxy. Filters match the tags huggingface.co derives from the card
    (`listings.card_tags`: its tags, `base_model:...`, `dataset:...`, `license:...`, the
    library and pipeline), every one of them at once."""
    query = call.request.query_params
    listed_type = call.route.listed_type
    assert listed_type is not None
    records = await readable_hosted_repos(
        call, [listed_type], query.get("author"), query.get("search", "")
    )
    limit = whole_number_query(call.request, "limit")
    wanted = listings.ListingQuery.of(query)
    if limit is not None and not wanted.needs_cards and wanted.sort is None:
        records = records[:limit]  # no more summaries than are shown
    hosted_store = call.services.hosted
    summaries = [await hosted_store.summary(record) for record in records]
    if wanted.needs_cards:
        summaries = await listings.with_cards(hosted_store, listed_type, summaries, wanted)
    summaries = listings.sorted_summaries(summaries, wanted)
    if limit is not None:
        summaries = summaries[:limit]
    return JSONResponse(summaries)


async def readable_hosted_repos(
    call: Call, repo_types: Collection[str], author: str | None, search: str
) -> list[RepoRecord]:
    """The hosted repos of `repo_types` the caller may read (`authz.readable`), of project
    `author` if given (refused as the listing API refuses it), whose id contains `search`
    (any letter case): what repo listings and the web UI's pages show."""
    snapshot, caller = call.snapshot, call.principal
    require_auth = call.settings.require_auth
    decision = enforce(authorize_listing(caller, author, snapshot, require_auth=require_auth))
    named = decision.project.name if decision.project else None
    search = search.lower()

    def hosted(namespace: str) -> bool:
        project = snapshot.project_of(namespace)
        return project is not None and project.kind == "hosted" and project.name == namespace

    records = {
        record.ref.repo_id: record
        for record in await call.hub.repos.list_repos(named)
        if record.ref.repo_type in repo_types
        and hosted(record.ref.repo_id.split("/")[0])
        and search in record.ref.repo_id.lower()
    }
    visibility = {
        repo_id: RepoVisibility(record.private, record.gated) for repo_id, record in records.items()
    }
    return [records[repo_id] for repo_id in readable(caller, visibility, snapshot)]


async def validate_yaml(call: Call) -> Response:
    """`{"content", "repoType"}` -> `{"errors", "warnings"}` (hf-protocol.md §6.1): 200, or
    400 with the errors (the client reads the JSON before the status)."""
    payload = await json_object(call.request)
    content = payload.get("content")
    repo_type = payload.get("repoType") or "model"
    if not isinstance(content, str):
        raise BadRequest("Request body needs the card's 'content'")
    if repo_type not in REPO_TYPES:
        raise BadRequest(f"Unknown repo type {repo_type!r}")
    check = validate_card(content, repo_type)
    answer: dict[str, Any] = {
        "errors": [{"message": message} for message in check.errors],
        "warnings": [{"message": message} for message in check.warnings],
    }
    if check.errors:
        headers = {"X-Error-Code": "BadRequest", "X-Error-Message": check.errors[0]}
        return JSONResponse(answer, status_code=400, headers=headers)
    return JSONResponse(answer)
