"""Pages of one repo, at huggingface.co's URLs: the card (`/{repo}`), files (`tree`, `blob`),
history (`commits`, `commit`) and discussions.

The dispatcher has authorized `read` on the repo and chosen its store before a handler runs;
handlers read through that store (`stores.RepoStore`: the private hub or the cache, never
asking which), as the API's handlers do. What only one side has — a hosted commit's files,
the cache state of a proxied repo — comes from the hosted repos and the cache manager.
"""

from typing import Any

from starlette.responses import Response

from hubproxy.cache.storage.base import FileSegment
from hubproxy.constants import DEFAULT_REVISION, PLURAL_BY_REPO_TYPE
from hubproxy.errors import HubError, NotFound
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.discussions import details
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hf_api.registry import alias_targets
from hubproxy.hub.pull_requests import changed_paths
from hubproxy.stores import FileEntry
from hubproxy.web.render import (
    card_panel,
    human_size,
    markdown_html,
    page,
    quoted,
    repo_url,
    revision_segment,
    split_card,
)

# A tree page lists this many entries (a 10,000-file folder is paged, never sent whole).
TREE_PAGE_SIZE = 200
# Files up to this size are previewed as text on their blob page; cards up to it rendered.
PREVIEW_BYTES = 256 * 1024
CARD_NAME = "README.md"
MAX_CURSOR = 10**9
MAX_PAGE = 10**6


async def _read_text(call: Call, entry: FileEntry) -> str | None:
    """A small file's text, or None when it is too large or not UTF-8 text."""
    if entry.size > PREVIEW_BYTES:
        return None
    data = bytearray()
    async for part in call.repo_store.read(entry, 0, entry.size):
        if isinstance(part, FileSegment):  # not asked for (files=False); closed if given
            part.close()
            raise NotFound("file content came as an open file")
        data += part
    if b"\0" in data:
        return None
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _cache_state(files: dict[str, int], sizes: dict[str, int]) -> str:
    """`complete`, `partial` or `not cached`: how much of the repo at this commit is stored."""
    stored = sum(min(files.get(path, 0), size) for path, size in sizes.items())
    total = sum(sizes.values())
    if stored and stored >= total:
        return "complete"
    return "partial" if stored else "not cached"


def _common(call: Call) -> dict[str, Any]:
    ref = call.repo
    return {
        "ref": ref,
        "hosted": call.hosted,
        "plural": PLURAL_BY_REPO_TYPE[ref.repo_type],
        "title": ref.repo_id,
    }


async def repo(call: Call) -> Response:
    """The card, metadata panel, latest commit, refs, aliases (hosted repos), size,
    snippets and cache state."""
    ref, store = call.repo, call.repo_store
    info = (await store.repo_info(ref, None, [("blobs", "true")])).body
    commit = str(info.get("sha", ""))
    sizes = {
        str(item["rfilename"]): int(item.get("size") or 0) for item in info.get("siblings", [])
    }
    metadata: dict[str, Any] = {}
    card_html = ""
    if CARD_NAME in sizes:
        try:
            text = await _read_text(call, await store.file_entry(ref, commit, CARD_NAME))
        except HubError:
            text = None  # offline and not cached, say: the page still shows the rest
        if text is not None:
            metadata, body = split_card(text)
            card_html = markdown_html(body)
    refs = (await store.refs(ref, include_prs=False)).body
    history = await store.commits(ref, commit, 0, formatted=False)
    cache: dict[str, Any] | None = None
    if not call.hosted and call.services.cache is not None:
        files = await call.services.cache.cached_files(ref, commit)
        cache = {
            "state": _cache_state(files, sizes),
            "stored": sum(files.values()),
            "pins": await call.services.cache.pins_of(ref),
        }
    aliases = await alias_targets(call) if call.hosted else {}
    return page(
        call,
        "repo.html",
        **_common(call),
        info=info,
        commit=commit,
        size=sum(sizes.values()),
        file_count=len(sizes),
        panel=card_panel(metadata),
        card_html=card_html,
        refs=refs,
        latest=history.items[0] if history.items else None,
        cache=cache,
        aliases=aliases,
        base_url=call.base_url,
    )


async def tree(call: Call) -> Response:
    """One page of a folder's entries (`?cursor=` pages on), folders first."""
    ref, path = call.repo, call.route.path
    cursor = whole_number_query(call.request, "cursor", default=0, maximum=MAX_CURSOR) or 0
    answer = await call.repo_store.tree(ref, call.revision, path, recursive=False, expand=False)
    # Folders first, each group in the store's (path) order: no sort of 10,000 entries.
    listing = [item for item in answer.body if item["type"] == "directory"]
    listing += [item for item in answer.body if item["type"] != "directory"]
    cached: dict[str, int] | None = None
    if not call.hosted and call.services.cache is not None and answer.commit:
        cached = await call.services.cache.cached_files(ref, answer.commit)
    entries = _rows(call, listing[cursor : cursor + TREE_PAGE_SIZE], cached)
    return page(
        call,
        "tree.html",
        **_common(call),
        revision=call.revision,
        commit=answer.commit,
        folder=path,
        parents=_parents(path),
        entries=entries,
        total=len(listing),
        cursor=cursor,
        next_cursor=cursor + TREE_PAGE_SIZE if cursor + TREE_PAGE_SIZE < len(listing) else None,
        previous_cursor=max(cursor - TREE_PAGE_SIZE, 0) if cursor else None,
    )


def _rows(
    call: Call, items: list[dict[str, Any]], cached: dict[str, int] | None
) -> list[dict[str, Any]]:
    """What the tree page shows of each entry, links built here once (the template only
    prints: a page of 200 rows renders in a few milliseconds)."""
    base = f"{repo_url(call.repo)}/"
    revision = revision_segment(call.revision)
    rows = []
    for item in items:
        path = item["path"]
        folder = item["type"] == "directory"
        rows.append(
            {
                "name": path.rsplit("/", 1)[-1] + ("/" if folder else ""),
                "href": f"{base}{'tree' if folder else 'blob'}/{revision}/{quoted(path)}",
                "folder": folder,
                "size": "" if folder else human_size(item.get("size")),
                "lfs": "LFS" if item.get("lfs") else "",
                "cached": None if cached is None or folder else human_size(cached.get(path, 0)),
            }
        )
    return rows


def _parents(path: str) -> list[tuple[str, str]]:
    """(name, path) of each folder on the way to `path`, for the breadcrumb."""
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[: index + 1])) for index, part in enumerate(parts)]


async def blob(call: Call) -> Response:
    """A file: size, oid, sha256, LFS, cached bytes, and a text preview up to a limit."""
    ref, store = call.repo, call.repo_store
    entry = await store.file_entry(ref, call.revision, call.route.path)
    cached_bytes: int | None = None
    if not call.hosted and call.services.cache is not None:
        cached_bytes = (await call.services.cache.cached_files(ref, entry.commit)).get(
            entry.path, 0
        )
    text = await _read_text(call, entry) if entry.size <= PREVIEW_BYTES else None
    return page(
        call,
        "blob.html",
        **_common(call),
        revision=call.revision,
        entry=entry,
        parents=_parents(entry.path),
        cached_bytes=cached_bytes,
        text=text,
        too_large=entry.size > PREVIEW_BYTES,
        preview_limit=PREVIEW_BYTES,
    )


async def commits(call: Call) -> Response:
    """One page of history (`?p=`), newest first."""
    number = whole_number_query(call.request, "p", default=0, maximum=MAX_PAGE) or 0
    history = await call.repo_store.commits(call.repo, call.revision, number, formatted=False)
    return page(
        call,
        "commits.html",
        **_common(call),
        revision=call.revision,
        items=history.items,
        page_number=number,
        has_next=history.has_next,
    )


async def commit(call: Call) -> Response:
    """A commit: message, author, parents and (hosted repos) the files it changed."""
    ref = call.repo
    history = await call.repo_store.commits(ref, call.revision, 0, formatted=False)
    if not history.items:
        raise NotFound(f"No commit {call.revision}")
    item = history.items[0]
    changes: list[dict[str, Any]] | None = None
    parents: tuple[str, ...] = ()
    if call.hosted:
        repos = call.hub.repos
        record = await repos.commit(ref, history.commit)
        parents = record.parents
        after = await repos.files(ref, record.sha)
        before = await repos.files(ref, parents[0]) if parents else {}
        changes = []
        for path in changed_paths(before, after):
            old, new = before.get(path), after.get(path)
            status = "added" if old is None else "deleted" if new is None else "modified"
            present = new or old
            size = present.size if present is not None else 0
            changes.append({"path": path, "status": status, "size": size})
    return page(
        call,
        "commit.html",
        **_common(call),
        item=item,
        sha=history.commit,
        parents=parents,
        changes=changes,
    )


async def discussions(call: Call) -> Response:
    """The repo's discussions and pull requests, newest first (`?p=` pages on)."""
    number = whole_number_query(call.request, "p", default=0, maximum=MAX_PAGE) or 0
    records: list[Any] = []
    count = 0
    if call.hosted:
        records, count = await call.hub.discussions.page(
            call.repo, kind="all", status="all", author=None, start=number * 50, limit=50
        )
    return page(
        call,
        "discussions.html",
        **_common(call),
        records=records,
        count=count,
        page_number=number,
        has_next=(number + 1) * 50 < count,
    )


async def discussion(call: Call) -> Response:
    """A discussion or pull request: its comments (Markdown, sanitized), status and diff."""
    if not call.hosted:
        raise NotFound("hubproxy keeps no discussions of proxied repos")
    document = await details(call, call.route.discussion)
    comments = []
    for event in document["events"]:
        data = event.get("data", {})
        if event["type"] == "comment":
            hidden = bool(data.get("hidden"))
            raw = "" if hidden else str(data.get("latest", {}).get("raw", ""))
            comments.append({**event, "html": markdown_html(raw), "hidden": hidden})
        else:
            comments.append({**event, "html": "", "hidden": False})
    return page(
        call,
        "discussion.html",
        **_common(call),
        document=document,
        comments=comments,
        default_branch=DEFAULT_REVISION,
    )
