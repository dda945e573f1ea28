"""A bundle import into an existing hosted repo passes the same protection decision as every
other ref change: an immutable tag it would move refuses the whole import."""

from pathlib import Path

import pytest

from hubproxy.auth.authz import Refused
from hubproxy.auth.protections import OPERATOR
from hubproxy.db import Database
from hubproxy.hub.bundles import HostedImport, import_section
from hubproxy.hub.registry import HubRegistry
from hubproxy.hub.repos import BRANCH, TAG, CommitRecord, HubFile, HubRepos
from hubproxy.naming import RepoRef
from hubproxy.ref_rules import ProtectionRule

REPO = RepoRef("model", "team/imported")
FILES = {"a.txt": HubFile(1, "1" * 40)}
FIRST = CommitRecord("a" * 40, "b" * 40, (), "alice", "first", "first", 1.0)
SECOND = CommitRecord("c" * 40, "b" * 40, (FIRST.sha,), "alice", "second", "second", 2.0)


async def _repos(tmp_path: Path) -> HubRepos:
    database = Database(tmp_path / "hubproxy.sqlite3")
    await database.open()
    repos = HubRepos(database)
    await repos.create_repo(REPO, private=True, created_by="alice", initial=FIRST, files=FILES)
    await repos.create_ref(REPO, TAG, "v1", FIRST.sha)
    return repos


def _plan(refs: dict[str, dict[str, str]]) -> HostedImport:
    return HostedImport(REPO, True, [(FIRST, FILES), (SECOND, FILES)], refs)


async def test_an_immutable_tag_refuses_the_import(tmp_path: Path) -> None:
    repos = await _repos(tmp_path)
    rule = ProtectionRule("v*", "maintainer", immutable=True)
    await HubRegistry(repos.database).protect(rule, "alice", repo=REPO, project=None)
    moved = _plan({BRANCH: {"main": SECOND.sha}, TAG: {"v1": SECOND.sha}})
    with pytest.raises(Refused, match="immutable"):
        await import_section(repos, moved, OPERATOR)
    assert (await repos.refs(REPO))[TAG] == {"v1": FIRST.sha}
    # Moving main alone is allowed: the tag stays where it is.
    kept = _plan({BRANCH: {"main": SECOND.sha}, TAG: {"v1": FIRST.sha}})
    await import_section(repos, kept, OPERATOR)
    assert (await repos.refs(REPO))[BRANCH] == {"main": SECOND.sha}
    repos.database.close_sync()
