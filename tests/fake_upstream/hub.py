"""The hub origin: the API and `/resolve/`, shaped like huggingface.co (hf-protocol.md §2, §4)."""

import asyncio
import time
from collections.abc import Callable
from urllib.parse import quote, unquote

from starlette.types import Receive, Scope, Send

from tests.fake_upstream.repos import Commit, FakeHub, Repo
from tests.fake_upstream.wire import Abort, Exchange

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIXES = {"datasets": "dataset", "spaces": "space"}


class HubApp:
    def __init__(self, hub: FakeHub, cdn_url: Callable[[], str]) -> None:
        self.hub = hub
        self.cdn_url = cdn_url
        self.url = ""  # set by the server once the port is known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        exchange = Exchange(self.hub, "hub", scope, receive, send)
        if self.hub.latency_seconds:
            await asyncio.sleep(self.hub.latency_seconds)
        if self.hub.down:
            if self.hub.down_mode == "reset":
                raise Abort("down")
            await exchange.respond(503, b"upstream down")
            return
        await self.route(exchange)

    # Access -----------------------------------------------------------------------

    def token(self, exchange: Exchange) -> str | None:
        value = exchange.header("authorization") or ""
        token = value[7:] if value.lower().startswith("bearer ") else None
        return token if token in self.hub.tokens else None

    async def find_repo(self, exchange: Exchange, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.hub.find(repo_type, repo_id)
        token = self.token(exchange)
        moved_to = self.hub.moved_to(repo_type, repo_id) if repo is None else None
        if moved_to is not None:
            # huggingface.co: a renamed repo's old URLs redirect to the new name (307, so
            # that POSTs stay POSTs), on every endpoint.
            await exchange.respond(307, b"", {"Location": _renamed(exchange, repo_id, moved_to)})
            return None
        if repo is None or (repo.private and token is None):
            # huggingface.co: 401 for anonymous callers, 404 for authenticated ones.
            await exchange.error(404 if token else 401, "RepoNotFound", "Repository not found")
            return None
        return repo

    async def find_commit(self, exchange: Exchange, repo: Repo, revision: str) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            await exchange.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # Routing ----------------------------------------------------------------------

    async def route(self, exchange: Exchange) -> None:
        segments = [unquote(s) for s in exchange.raw_path.split("/")[1:]]
        if segments[0] == "_fake":
            await self.control(exchange, segments[1:])
            return
        if segments[:2] == ["api", "whoami-v2"]:
            if self.token(exchange) is None:
                await exchange.error(401, None, "Invalid credentials in Authorization header")
            else:
                await exchange.json({"type": "user", "name": "proxy-robot", "orgs": []})
            return
        if segments[:2] == ["api", "resolve-cache"]:
            await self.resolve_cache(exchange, segments[2:])
            return
        if segments[0] == "api" and len(segments) >= 4 and segments[1] in TYPES:
            await self.api(exchange, TYPES[segments[1]], segments[2:])
            return
        repo_type = "model"
        if segments[0] in PREFIXES and len(segments) > 4:
            repo_type, segments = PREFIXES[segments[0]], segments[1:]
        if len(segments) >= 5 and segments[2] == "resolve":
            await self.resolve(
                exchange,
                repo_type,
                f"{segments[0]}/{segments[1]}",
                segments[3],
                "/".join(segments[4:]),
            )
            return
        await exchange.respond(404, b"no such route")

    async def control(self, exchange: Exchange, segments: list[str]) -> None:
        """Counters and knobs for benchmark scripts that run the fake hub as a process."""
        if segments == ["stats"]:
            await exchange.json(
                {
                    "file_bytes": self.hub.file_bytes_served(),
                    "hub_bytes": self.hub.body_bytes(origin="hub"),
                    "cdn_bytes": self.hub.body_bytes(origin="cdn"),
                    "requests": self.hub.count(),
                }
            )
        elif segments == ["reset-stats"]:
            self.hub.reset_stats()
            await exchange.json({})
        elif segments == ["cdn-rate"]:
            value = exchange.query_value("bytes_per_second")
            self.hub.cdn_bytes_per_second_per_connection = int(value) if value else None
            await exchange.json({})
        else:
            await exchange.respond(404, b"no such control")

    async def api(self, exchange: Exchange, repo_type: str, segments: list[str]) -> None:
        repo_id = f"{segments[0]}/{segments[1]}"
        rest = segments[2:]
        repo = await self.find_repo(exchange, repo_type, repo_id)
        if repo is None:
            return
        if not rest:
            await self.info(exchange, repo, repo.branches["main"])
        elif rest[0] == "revision" and len(rest) >= 2:
            await self.info(exchange, repo, "/".join(rest[1:]))
        elif rest[0] == "tree" and len(rest) >= 2:
            await self.tree(exchange, repo, rest[1], "/".join(rest[2:]))
        elif rest[0] == "paths-info" and len(rest) >= 2:
            await self.paths_info(exchange, repo, rest[1])
        elif rest[0] == "refs":
            await self.refs(exchange, repo)
        elif rest[0] == "commits" and len(rest) >= 2:
            await self.commits(exchange, repo, rest[1])
        else:
            await exchange.respond(404, b"no such route")

    # API endpoints ----------------------------------------------------------------

    async def info(self, exchange: Exchange, repo: Repo, revision: str) -> None:
        commit = await self.find_commit(exchange, repo, revision)
        if commit is None:
            return
        blobs = exchange.query_value("blobs") == "true"
        siblings = []
        for path, stored in sorted(commit.files.items()):
            sibling: dict[str, object] = {"rfilename": path}
            if blobs:
                sibling.update({"size": stored.size, "blobId": stored.oid})
                if stored.sha256:
                    sibling["lfs"] = {
                        "size": stored.size,
                        "sha256": stored.sha256,
                        "pointerSize": stored.pointer_size,
                    }
            siblings.append(sibling)
        await exchange.json(
            {
                "_id": commit.sha[:24],
                "id": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.sha,
                "private": repo.private,
                "gated": "auto" if repo.gated else False,
                "disabled": False,
                "lastModified": commit.date,
                "createdAt": commit.date,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "xetEnabled": True,
            }
        )

    def listing(
        self, commit: Commit, path: str, recursive: bool, expand: bool
    ) -> list[dict[str, object]] | None:
        prefix = f"{path}/" if path else ""
        if path and not any(p.startswith(prefix) for p in commit.files):
            return None
        entries: dict[str, dict[str, object]] = {}
        for file_path, stored in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            relative = file_path[len(prefix) :]
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                directory = prefix + "/".join(parts[:depth])
                if depth == 1 or recursive:
                    entries.setdefault(
                        directory,
                        {
                            "type": "directory",
                            "oid": _directory_oid(commit, directory),
                            "size": 0,
                            "path": directory,
                        },
                    )
            if len(parts) == 1 or recursive:
                entries[file_path] = stored.entry(commit, expand=expand)
        return list(entries.values())

    async def tree(self, exchange: Exchange, repo: Repo, revision: str, path: str) -> None:
        commit = await self.find_commit(exchange, repo, revision)
        if commit is None:
            return
        recursive = exchange.query_value("recursive") == "true"
        expand = exchange.query_value("expand") == "true"
        entries = self.listing(commit, path, recursive, expand)
        if entries is None:
            await exchange.error(
                404,
                "EntryNotFound",
                f"{path} does not exist on {revision}",
                {"X-Repo-Commit": commit.sha},
            )
            return
        cursor = int(exchange.query_value("cursor", "0") or 0)
        size = self.hub.tree_page_size
        headers = {}
        if cursor + size < len(entries):
            base = exchange.raw_path
            headers["Link"] = (
                f"<{self.url}{base}?recursive={str(recursive).lower()}&expand={str(expand).lower()}"
                f'&cursor={cursor + size}>; rel="next"'
            )
        await exchange.json(entries[cursor : cursor + size], headers)

    async def paths_info(self, exchange: Exchange, repo: Repo, revision: str) -> None:
        from urllib.parse import parse_qs

        commit = await self.find_commit(exchange, repo, revision)
        if commit is None:
            return
        form = parse_qs((await exchange.body()).decode(), keep_blank_values=True)
        expand = form.get("expand", ["false"])[0] == "true"
        result = []
        for path in form.get("paths", []):
            if path in commit.files:
                result.append(commit.files[path].entry(commit, expand=expand))
            elif any(p.startswith(path + "/") for p in commit.files):
                result.append(
                    {
                        "type": "directory",
                        "oid": _directory_oid(commit, path),
                        "size": 0,
                        "path": path,
                    }
                )
        await exchange.json(result)

    async def refs(self, exchange: Exchange, repo: Repo) -> None:
        document: dict[str, object] = {
            "branches": [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": s}
                for n, s in repo.branches.items()
            ],
            "converts": [],
            "tags": [
                {"name": n, "ref": f"refs/tags/{n}", "targetCommit": s}
                for n, s in repo.tags.items()
            ],
        }
        if exchange.query_value("include_prs") in ("1", "true"):
            document["pullRequests"] = [
                {"name": str(n), "ref": f"refs/pr/{n}", "targetCommit": s}
                for n, s in repo.pull_requests.items()
            ]
        await exchange.json(document)

    async def commits(self, exchange: Exchange, repo: Repo, revision: str) -> None:
        commit = await self.find_commit(exchange, repo, revision)
        if commit is None:
            return
        history: list[dict[str, object]] = []
        current: Commit | None = commit
        formatted = "formatted" in exchange.query.get("expand[]", [])
        while current is not None:
            item: dict[str, object] = {
                "id": current.sha,
                "title": current.message,
                "message": "",
                "date": current.date,
                "authors": [{"user": "fake"}],
            }
            if formatted:
                item["formatted"] = {"title": f"<p>{current.message}</p>", "message": ""}
            history.append(item)
            current = current.parent
        page = int(exchange.query_value("p", "0") or 0)
        size = self.hub.commits_page_size
        headers = {}
        if (page + 1) * size < len(history):
            extra = "&expand%5B%5D=formatted" if formatted else ""
            headers["Link"] = f'<{self.url}{exchange.raw_path}?p={page + 1}{extra}>; rel="next"'
        await exchange.json(history[page * size : (page + 1) * size], headers)

    # Files ------------------------------------------------------------------------

    async def resolve(
        self, exchange: Exchange, repo_type: str, repo_id: str, revision: str, path: str
    ) -> None:
        repo = await self.find_repo(exchange, repo_type, repo_id)
        if repo is None:
            return
        commit = await self.find_commit(exchange, repo, revision)
        if commit is None:
            return
        stored = commit.files.get(path)
        if stored is None:
            await exchange.error(
                404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha}
            )
            return
        if repo.gated:
            token = self.token(exchange)
            if token is None:
                await exchange.error(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must be authenticated.",
                )
                return
            if token not in self.hub.gated_grants:
                await exchange.error(
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized list.",
                )
                return
        if stored.sha256 is None:
            plural = {"model": "models", "dataset": "datasets", "space": "spaces"}[repo_type]
            location = f"/api/resolve-cache/{plural}/{repo_id}/{commit.sha}/{quote(path)}?etag=%22{stored.oid}%22"
            await exchange.respond(307, b"", {"Location": location, "X-Repo-Commit": commit.sha})
            return
        expires = int(time.time() + self.hub.cdn_url_ttl)
        location = f"{self.cdn_url()}/lfs/{stored.sha256}?expires={expires}&signature={self.hub.sign(stored.sha256, expires)}"
        xet = str(stored.entry()["xetHash"])
        await exchange.respond(
            302,
            b"",
            {
                "Location": location,
                "X-Repo-Commit": commit.sha,
                "X-Linked-Etag": f'"{stored.sha256}"',
                "X-Linked-Size": str(stored.size),
                "ETag": f'"{stored.oid}"',
                "X-Xet-Hash": xet,
                "Link": f'<{self.url}/api/{repo_type}s/{repo_id}/xet-read-token/{commit.sha}>; rel="xet-auth"',
            },
        )

    async def resolve_cache(self, exchange: Exchange, segments: list[str]) -> None:
        if len(segments) < 5 or segments[0] not in TYPES:
            await exchange.respond(404, b"no such route")
            return
        repo = await self.find_repo(exchange, TYPES[segments[0]], f"{segments[1]}/{segments[2]}")
        if repo is None:
            return
        commit = repo.commits.get(segments[3])
        stored = commit.files.get("/".join(segments[4:])) if commit else None
        if commit is None or stored is None:
            await exchange.error(404, "EntryNotFound", "Entry not found")
            return
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{stored.oid}"',
            "Content-Type": "text/plain; charset=utf-8",
        }
        await exchange.stream_content(
            stored.content,
            stored.size,
            headers,
            cut=self.hub.take_cut,
            corrupt=self.hub.take_corruption,
        )


def _renamed(exchange: Exchange, old_id: str, new_id: str) -> str:
    """The request's own path and query with the repo id `old_id` replaced by `new_id`."""
    segments = exchange.raw_path.split("/")
    old_namespace, old_name = (unquote(part).lower() for part in old_id.split("/"))
    for index in range(len(segments) - 1):
        if (
            unquote(segments[index]).lower() == old_namespace
            and unquote(segments[index + 1]).lower() == old_name
        ):
            segments[index : index + 2] = new_id.split("/")
            break
    query = f"?{exchange.query_string}" if exchange.query_string else ""
    return "/".join(segments) + query


def _directory_oid(commit: Commit, directory: str) -> str:
    import hashlib

    children = sorted((p, f.oid) for p, f in commit.files.items() if p.startswith(directory + "/"))
    return hashlib.sha1(repr(children).encode(), usedforsecurity=False).hexdigest()
