"""One entry point for every Hub URL: match the raw path, check the method, call the handler."""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hubproxy.errors import MethodNotAllowed, NotFound
from hubproxy.hf_api import repos, resolve, tree, users
from hubproxy.hf_api.routing import RouteMatch, match_route
from hubproxy.hf_api.streaming import StreamResponse

Handler = Callable[[Request, RouteMatch], Awaitable[Response | StreamResponse]]

ENDPOINTS: dict[str, tuple[frozenset[str], Handler]] = {
    "resolve": (frozenset({"GET", "HEAD"}), resolve.resolve),
    "repo_info": (frozenset({"GET", "HEAD"}), repos.repo_info),
    "refs": (frozenset({"GET", "HEAD"}), repos.refs),
    "commits": (frozenset({"GET", "HEAD"}), repos.commits),
    "tree": (frozenset({"GET", "HEAD"}), tree.tree),
    "paths_info": (frozenset({"POST"}), tree.paths_info),
    "whoami": (frozenset({"GET"}), users.whoami),
    "agent_harnesses": (frozenset({"GET"}), users.agent_harnesses),
    "telemetry": (frozenset({"GET", "HEAD", "POST"}), users.telemetry),
}


class HubEndpoint:
    """A starlette endpoint (ASGI app) that routes on `scope["raw_path"]`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        root_path = scope.get("root_path", "").encode()
        if root_path and raw_path.startswith(root_path):
            raw_path = raw_path[len(root_path) :]
        match = match_route(raw_path)
        scope.setdefault("state", {})["route"] = match.endpoint if match else "unknown"
        if match is None:
            raise NotFound(f"No such endpoint: {request.method} {scope['path']}")
        methods, handler = ENDPOINTS[match.endpoint]
        if request.method not in methods:
            raise MethodNotAllowed(headers={"Allow": ", ".join(sorted(methods))})
        response = await handler(request, match)
        await response(scope, receive, send)
