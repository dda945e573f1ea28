"""Deleting a project: its account data and, when asked, its hosted repos, in one transaction.

Shared by the admin CLI (on the data dir) and the admin API (in a running server): it spans
`auth.accounts` and `hub.repos`, which know nothing of each other.
"""

import sqlite3

from hubproxy.auth import accounts
from hubproxy.hub.repos import delete_namespace, repos_in_namespace


def delete_project(
    connection: sqlite3.Connection, name: str, *, delete_repos: bool
) -> accounts.Project:
    """Delete project `name` with its members and robots. A project that holds hosted repos
    is refused (`AccountConflict`) unless `delete_repos`, which deletes them too (their content
    stays stored until `cache gc`)."""
    held = repos_in_namespace(connection, name)
    if held and not delete_repos:
        raise accounts.AccountConflict(
            f"project {name!r} holds {held} hosted repos: delete them first, or pass --delete-repos"
        )
    delete_namespace(connection, name)
    connection.execute("DELETE FROM project_protections WHERE project = ?", (name,))
    return accounts.delete_project(connection, name)
