"""Likes of hosted repos: which user likes which repo, since when (`HfApi.like`, `unlike`,
`list_liked_repos`). A like belongs to its repo: deleting the repo deletes it, moving the repo
moves it (`hub_likes` is one of the repo's tables in `hub.repos`)."""

import sqlite3
import time
from dataclasses import dataclass

from hubproxy.db import Database
from hubproxy.naming import RepoRef


@dataclass(frozen=True, slots=True)
class Like:
    ref: RepoRef
    created: float


class HubLikes:
    """The `hub_likes` table."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def like(self, ref: RepoRef, user: str) -> None:
        """`user` likes the hosted repo `ref` (which must exist); liking twice changes nothing."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO hub_likes (user_name, repo_type, repo_id, created)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (user, ref.repo_type, ref.repo_id, time.time()),
            )

        await self.database.run(store)

    async def unlike(self, ref: RepoRef, user: str) -> None:
        """`user` no longer likes `ref`; unliking a repo never liked changes nothing."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "DELETE FROM hub_likes WHERE user_name = ? AND repo_type = ? AND repo_id = ?",
                (user, ref.repo_type, ref.repo_id),
            )

        await self.database.run(store)

    async def of_user(self, user: str) -> list[Like]:
        """The repos `user` likes, most recent first."""

        def load(connection: sqlite3.Connection) -> list[Like]:
            rows = connection.execute(
                "SELECT repo_type, repo_id, created FROM hub_likes WHERE user_name = ?"
                " ORDER BY created DESC",
                (user,),
            ).fetchall()
            return [Like(RepoRef(row[0], row[1]), row[2]) for row in rows]

        return await self.database.read(load)

    async def count(self, ref: RepoRef) -> int:
        """How many users like `ref`."""

        def load(connection: sqlite3.Connection) -> int:
            row = connection.execute(
                "SELECT count(*) FROM hub_likes WHERE repo_type = ? AND repo_id = ?",
                (ref.repo_type, ref.repo_id),
            ).fetchone()
            return int(row[0])

        return await self.database.read(load)
