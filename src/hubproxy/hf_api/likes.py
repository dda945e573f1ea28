"""Likes (`HfApi.like`, `unlike`, `list_liked_repos`): `POST|DELETE /api/{type}s/{repo}/like`
and `GET /api/users/{user}/likes`. Only hosted repos take likes; a listing shows the caller
only the liked repos it may read (a private repo's name is not given away)."""

from starlette.responses import JSONResponse, PlainTextResponse, Response

from hubproxy.auth.authz import RepoVisibility, readable
from hubproxy.errors import RepoNotFound
from hubproxy.hf_api.call import Call
from hubproxy.hub.store import iso_date
from hubproxy.naming import RepoRef


async def like(call: Call) -> Response:
    """The endpoint table authorized reading the repo; the like is the caller's."""
    if not call.hosted:
        # Proxied repos are huggingface.co's: like them there.
        raise RepoNotFound()
    if await call.hub.repos.find(call.repo) is None:
        raise RepoNotFound()
    if call.request.method == "DELETE":
        await call.hub.likes.unlike(call.repo, call.principal.name)
    else:
        await call.hub.likes.like(call.repo, call.principal.name)
    return PlainTextResponse("OK")


async def user_likes(call: Call) -> Response:
    """`[{"createdAt", "repo": {"name", "type"}}]`, most recent first."""
    liked = await call.hub.likes.of_user(call.route.subject)
    shown: set[RepoRef] = set()
    for repo_type in {found.ref.repo_type for found in liked}:
        visibility: dict[str, RepoVisibility] = {}
        for found in liked:
            record = await call.hub.repos.find(found.ref)
            if found.ref.repo_type == repo_type and record is not None:
                visibility[found.ref.repo_id] = RepoVisibility(record.private, record.gated)
        require_auth = call.settings.require_auth
        for repo_id in readable(
            call.principal, visibility, call.snapshot, require_auth=require_auth
        ):
            shown.add(RepoRef(repo_type, repo_id))
    return JSONResponse(
        [
            {
                "createdAt": iso_date(found.created),
                "repo": {"name": found.ref.repo_id, "type": found.ref.repo_type},
            }
            for found in liked
            if found.ref in shown
        ]
    )
