"""`HubDiscussions`: discussions and pull requests of hosted repos, and their events.

One number sequence per repo holds both kinds (`refs/pr/N` is pull request N). A discussion's
events are what the Hub shows on its page: the opening description and every comment
(`comment`), `status-change`, `title-change`, and for pull requests each `commit` pushed. The
in-transaction functions (`insert_*`, `move_pull_request_head`, `mark_merged`) let a commit and
what it does to a pull request land in one transaction (`HubRepos.store_commit`).
"""

import html
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Final

from hubproxy.db import Database
from hubproxy.errors import BadRequest, NotFound, PreconditionFailed
from hubproxy.hub.announcements import Announcer
from hubproxy.hub.events import (
    CommentFacts,
    DiscussionFacts,
    EventAction,
    EventScope,
    RefUpdate,
)
from hubproxy.naming import RepoRef

DRAFT, OPEN, CLOSED, MERGED = "draft", "open", "closed", "merged"
STATUSES: Final = (DRAFT, OPEN, CLOSED, MERGED)
COMMENT, STATUS_CHANGE, TITLE_CHANGE, COMMIT = "comment", "status-change", "title-change", "commit"
TITLE_MIN, TITLE_MAX = 3, 200
COMMENT_MAX = 64 * 1024
# What the Hub answers for an unknown discussion number (no `RepoNotFound` code: the repo exists).
DISCUSSION_NOT_FOUND = "Discussion not found"


@dataclass(frozen=True, slots=True)
class DiscussionRecord:
    """A discussion, or a pull request (`base_*`, `head_commit` and `merge_commit` set)."""

    ref: RepoRef
    num: int
    is_pull_request: bool
    title: str
    status: str
    author: str
    created: float
    base_branch: str | None = None
    base_commit: str | None = None
    head_commit: str | None = None
    merge_commit: str | None = None

    @property
    def git_reference(self) -> str:
        return f"refs/pr/{self.num}"

    @property
    def branches(self) -> tuple[str, str, str]:
        """A pull request's (target branch, base commit, head commit)."""
        if self.base_branch is None or self.base_commit is None or self.head_commit is None:
            raise NotFound(f"Discussion {self.num} is not a pull request")
        return self.base_branch, self.base_commit, self.head_commit


@dataclass(frozen=True, slots=True)
class EventRecord:
    event_id: str
    type: str
    author: str
    created: float
    data: dict[str, Any]


def discussion_facts(record: DiscussionRecord) -> DiscussionFacts:
    """What an event says of a discussion (`hub/events.py`)."""
    return DiscussionFacts(
        record.num,
        record.title,
        record.is_pull_request,
        record.status,
        record.author,
        record.base_branch,
        record.merge_commit,
    )


def comment_facts(event: EventRecord) -> CommentFacts:
    latest = event.data.get("latest", {})
    return CommentFacts(
        event.event_id, event.author, str(latest.get("raw", "")), bool(event.data.get("hidden"))
    )


def _key(ref: RepoRef) -> tuple[str, str]:
    return (ref.repo_type, ref.repo_id)


def _record_of(ref: RepoRef, row: sqlite3.Row) -> DiscussionRecord:
    return DiscussionRecord(
        ref,
        row["num"],
        bool(row["is_pull_request"]),
        row["title"],
        row["status"],
        row["author"],
        row["created"],
        row["base_branch"],
        row["base_commit"],
        row["head_commit"],
        row["merge_commit"],
    )


def _event_of(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        row["event_id"], row["type"], row["author"], row["created"], json.loads(row["data"])
    )


def _encodable(value: str, name: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{name!r} is not valid Unicode text") from None


def checked_title(value: object) -> str:
    """A title as the Hub accepts it: 3 to 200 characters once stripped."""
    if not isinstance(value, str):
        raise BadRequest("'title' must be a string")
    _encodable(value, "title")
    title = value.strip()
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        raise BadRequest(f"Title must be between {TITLE_MIN} and {TITLE_MAX} characters long")
    return title


def checked_comment(value: object, name: str = "comment") -> str:
    """Markdown text of a comment: a non-blank string, bounded."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name!r} must be a non-empty string")
    if len(value) > COMMENT_MAX:
        raise BadRequest(f"{name!r} is longer than {COMMENT_MAX} characters")
    _encodable(value, name)
    return value


def _rendered(raw: str) -> str:
    """The comment as HTML: hubproxy renders no Markdown, it escapes the text."""
    return f"<p>{html.escape(raw)}</p>" if raw else ""


def comment_data(raw: str, author: str, now: float) -> dict[str, Any]:
    latest = {"raw": raw, "html": _rendered(raw), "updatedAt": now, "author": author}
    return {"edited": False, "hidden": False, "latest": latest, "history": []}


def _get(connection: sqlite3.Connection, ref: RepoRef, num: int) -> DiscussionRecord:
    row = connection.execute(
        "SELECT * FROM hub_discussions WHERE repo_type = ? AND repo_id = ? AND num = ?",
        (*_key(ref), num),
    ).fetchone()
    if row is None:
        raise NotFound(DISCUSSION_NOT_FOUND)
    return _record_of(ref, row)


def insert_event(
    connection: sqlite3.Connection,
    ref: RepoRef,
    num: int,
    kind: str,
    author: str,
    data: dict[str, Any],
    now: float | None = None,
) -> EventRecord:
    event = EventRecord(secrets.token_hex(12), kind, author, now or time.time(), data)
    connection.execute(
        "INSERT INTO hub_discussion_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (event.event_id, *_key(ref), num, kind, author, event.created, json.dumps(data)),
    )
    return event


def insert_discussion(
    connection: sqlite3.Connection,
    ref: RepoRef,
    *,
    title: str,
    description: str,
    author: str,
    pull_request: tuple[str, str, str] | None = None,
    status: str = OPEN,
) -> int:
    """A new discussion (or, with `pull_request` = (base branch, base commit, head commit), a
    pull request) with its description as the first comment; its number."""
    now = time.time()
    row = connection.execute(
        "SELECT COALESCE(MAX(num), 0) + 1 FROM hub_discussions WHERE repo_type = ? AND repo_id = ?",
        _key(ref),
    ).fetchone()
    num = int(row[0])
    base_branch, base_commit, head_commit = pull_request or (None, None, None)
    connection.execute(
        "INSERT INTO hub_discussions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        (
            *_key(ref), num, int(pull_request is not None), title, status, author, now,
            base_branch, base_commit, head_commit,
        ),
    )  # fmt: skip
    insert_event(connection, ref, num, COMMENT, author, comment_data(description, author, now), now)
    return num


def move_pull_request_head(
    connection: sqlite3.Connection,
    ref: RepoRef,
    num: int,
    expected_head: str,
    commit: str,
    subject: str,
    author: str,
) -> None:
    """Point `refs/pr/{num}` at `commit` if it still points at `expected_head`; a draft is
    opened by its first commit; the push is a `commit` event."""
    moved = connection.execute(
        "UPDATE hub_discussions SET head_commit = ?,"
        " status = CASE status WHEN 'draft' THEN 'open' ELSE status END"
        " WHERE repo_type = ? AND repo_id = ? AND num = ? AND head_commit = ?",
        (commit, *_key(ref), num, expected_head),
    ).rowcount
    if not moved:
        raise PreconditionFailed(f"refs/pr/{num} moved while this commit was written: retry it")
    insert_event(connection, ref, num, COMMIT, author, {"subject": subject, "oid": commit})


def mark_merged(
    connection: sqlite3.Connection, ref: RepoRef, num: int, merge_commit: str, author: str
) -> None:
    connection.execute(
        "UPDATE hub_discussions SET status = 'merged', merge_commit = ?"
        " WHERE repo_type = ? AND repo_id = ? AND num = ?",
        (merge_commit, *_key(ref), num),
    )
    insert_event(connection, ref, num, STATUS_CHANGE, author, {"status": MERGED})


class HubDiscussions:
    """Typed access to `hub_discussions` and `hub_discussion_events`; each change, once
    committed, is announced (`hub/announcements.py`)."""

    def __init__(self, database: Database, announcer: Announcer | None = None) -> None:
        self.database = database
        self.announcer = announcer

    async def announce(
        self,
        ref: RepoRef,
        num: int,
        action: EventAction,
        scope: EventScope,
        author: str,
        comment: EventRecord | None = None,
        updated_refs: tuple[RefUpdate, ...] = (),
    ) -> None:
        """Announce a change of discussion `num` (as it is now); never raises for a
        discussion gone meanwhile."""
        if self.announcer is None or not self.announcer.listening:
            return
        try:
            facts = discussion_facts(await self.get(ref, num))
        except NotFound:
            return
        await self.announcer.announce(
            ref,
            action,
            scope,
            actor=author,
            discussion=facts,
            comment=None if comment is None else comment_facts(comment),
            updated_refs=updated_refs,
        )

    async def get(self, ref: RepoRef, num: int) -> DiscussionRecord:
        """Discussion `num` of the repo, or `NotFound`."""
        return await self.database.run(lambda connection: _get(connection, ref, num))

    async def pull_request(self, ref: RepoRef, num: int) -> DiscussionRecord:
        """Pull request `num`, or `NotFound` (a plain discussion has no ref)."""
        found = await self.get(ref, num)
        if not found.is_pull_request:
            raise NotFound(f"Discussion {num} is not a pull request")
        return found

    async def events(self, ref: RepoRef, num: int) -> list[EventRecord]:
        def load(connection: sqlite3.Connection) -> list[EventRecord]:
            rows = connection.execute(
                "SELECT * FROM hub_discussion_events WHERE repo_type = ? AND repo_id = ?"
                " AND num = ? ORDER BY created, rowid",
                (*_key(ref), num),
            )
            return [_event_of(row) for row in rows]

        return await self.database.run(load)

    async def page(
        self,
        ref: RepoRef,
        *,
        kind: str,
        status: str,
        author: str | None,
        start: int,
        limit: int,
    ) -> tuple[list[DiscussionRecord], int]:
        """One page of the repo's discussions, newest first, and how many match in all.
        `kind`: all, discussion, pull_request; `status`: all, open (drafts too), closed
        (merged too), or any one status."""
        conditions = ["repo_type = ?", "repo_id = ?"]
        parameters: list[Any] = [*_key(ref)]
        if kind != "all":
            conditions.append("is_pull_request = ?")
            parameters.append(int(kind == "pull_request"))
        statuses = {"all": STATUSES, OPEN: (OPEN, DRAFT), CLOSED: (CLOSED, MERGED)}.get(
            status, (status,)
        )
        conditions.append(f"status IN ({', '.join('?' for _ in statuses)})")
        parameters.extend(statuses)
        if author is not None:
            conditions.append("author = ?")
            parameters.append(author)
        where = " AND ".join(conditions)

        def load(connection: sqlite3.Connection) -> tuple[list[DiscussionRecord], int]:
            count = connection.execute(
                f"SELECT COUNT(*) FROM hub_discussions WHERE {where}",  # noqa: S608
                parameters,
            ).fetchone()[0]
            rows = connection.execute(
                f"SELECT * FROM hub_discussions WHERE {where}"  # noqa: S608
                " ORDER BY num DESC LIMIT ? OFFSET ?",
                [*parameters, limit, start],
            )
            return [_record_of(ref, row) for row in rows], int(count)

        return await self.database.run(load)

    async def create(self, ref: RepoRef, *, title: str, description: str, author: str) -> int:
        """A plain discussion; its number."""
        num = await self.database.run(
            lambda connection: insert_discussion(
                connection, ref, title=title, description=description, author=author
            )
        )
        await self.announce(ref, num, "create", "discussion", author)
        return num

    async def comment(self, ref: RepoRef, num: int, author: str, text: str) -> EventRecord:
        def store(connection: sqlite3.Connection) -> EventRecord:
            _get(connection, ref, num)
            return insert_event(
                connection, ref, num, COMMENT, author, comment_data(text, author, time.time())
            )

        event = await self.database.run(store)
        await self.announce(ref, num, "create", "discussion.comment", author, event)
        return event

    async def comment_event(self, ref: RepoRef, num: int, event_id: str) -> EventRecord:
        """Comment `event_id` (compared case-insensitively, as clients lowercase it)."""

        def load(connection: sqlite3.Connection) -> EventRecord:
            _get(connection, ref, num)
            row = connection.execute(
                "SELECT * FROM hub_discussion_events WHERE repo_type = ? AND repo_id = ?"
                " AND num = ? AND event_id = ? AND type = 'comment'",
                (*_key(ref), num, event_id.lower()),
            ).fetchone()
            if row is None:
                raise NotFound("Comment not found")
            return _event_of(row)

        return await self.database.run(load)

    async def update_comment(
        self, ref: RepoRef, num: int, event_id: str, editor: str, text: str | None
    ) -> EventRecord:
        """Edit a comment (its earlier version goes to `history`), or hide it (`text` None:
        its content is no longer shown)."""

        def store(connection: sqlite3.Connection) -> EventRecord:
            row = connection.execute(
                "SELECT * FROM hub_discussion_events WHERE event_id = ? AND repo_type = ?"
                " AND repo_id = ? AND num = ? AND type = 'comment'",
                (event_id.lower(), *_key(ref), num),
            ).fetchone()
            if row is None:
                raise NotFound("Comment not found")
            event = _event_of(row)
            data = dict(event.data)
            now = time.time()
            if text is None:
                data.update(hidden=True, latest={**data["latest"], "raw": "", "html": ""})
            else:
                if data["hidden"]:
                    raise BadRequest("A hidden comment cannot be edited")
                data["history"] = [data["latest"], *data["history"]]
                data.update(
                    edited=True,
                    latest={"raw": text, "html": _rendered(text), "updatedAt": now,
                            "author": editor},
                )  # fmt: skip
            connection.execute(
                "UPDATE hub_discussion_events SET data = ? WHERE event_id = ?",
                (json.dumps(data), event.event_id),
            )
            return EventRecord(event.event_id, event.type, event.author, event.created, data)

        updated = await self.database.run(store)
        await self.announce(ref, num, "update", "discussion.comment", editor, updated)
        return updated

    async def rename(self, ref: RepoRef, num: int, author: str, title: str) -> EventRecord:
        def store(connection: sqlite3.Connection) -> EventRecord:
            old = _get(connection, ref, num).title
            connection.execute(
                "UPDATE hub_discussions SET title = ? WHERE repo_type = ? AND repo_id = ?"
                " AND num = ?",
                (title, *_key(ref), num),
            )
            return insert_event(
                connection, ref, num, TITLE_CHANGE, author, {"from": old, "to": title}
            )

        event = await self.database.run(store)
        await self.announce(ref, num, "update", "discussion", author)
        return event

    async def change_status(
        self, ref: RepoRef, num: int, author: str, status: str, comment: str | None
    ) -> EventRecord:
        """Open or close a discussion (a merged pull request stays merged); a comment first
        when given. Opening is idempotent and publishes a draft: huggingface_hub opens a pull
        request it just committed to (which opened its draft) before merging it."""

        def store(connection: sqlite3.Connection) -> EventRecord:
            found = _get(connection, ref, num)
            if found.status == MERGED:
                raise BadRequest("This pull request is merged: its status cannot change")
            if found.status == status == CLOSED:
                raise BadRequest(f"This discussion is already {found.status}")
            now = time.time()
            if comment is not None:
                insert_event(
                    connection, ref, num, COMMENT, author, comment_data(comment, author, now), now
                )
            connection.execute(
                "UPDATE hub_discussions SET status = ? WHERE repo_type = ? AND repo_id = ?"
                " AND num = ?",
                (status, *_key(ref), num),
            )
            return insert_event(connection, ref, num, STATUS_CHANGE, author, {"status": status})

        event = await self.database.run(store)
        await self.announce(ref, num, "update", "discussion", author)
        return event
