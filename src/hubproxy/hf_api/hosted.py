"""Write endpoints of the private hub: create/delete repo, preupload, commit, branches, tags.

Authorization has already happened when a handler runs (the dispatcher derives the action
from the route, and for create/delete the repo from the JSON body). Proxied namespaces and
proxy projects never get here: they are read-only. Hosted repos themselves are not served
by this version yet, so an authorized write answers 501 with a clear message.
"""

from starlette.requests import Request
from starlette.responses import Response

from hubproxy.constants import REPO_TYPES, RepoType
from hubproxy.errors import BadRequest, NotImplementedYet
from hubproxy.hf_api.bodies import json_object
from hubproxy.hf_api.routing import RouteMatch
from hubproxy.naming import RepoRef, repo_ref


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


async def not_yet(request: Request, match: RouteMatch) -> Response:
    raise NotImplementedYet(
        "Hosted repos are not served by this version of hubproxy: uploads, commits, branches "
        "and tags are not available yet"
    )
