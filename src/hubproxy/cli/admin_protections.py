"""`hubproxy admin protect`: protection rules of refs, per hosted repo or per project.

    hubproxy admin protect acme/sentiment 'v*' --immutable --min-role maintainer
    hubproxy admin protect acme main --project --via-pr
    hubproxy admin protect acme/sentiment            # the rules that apply
    hubproxy admin protect acme/sentiment 'v*' --remove

On the data dir (audited with the operating-system user as the actor), or through a running
server with --endpoint URL --token T (`/api/hubproxy/.../protections`, which takes a project
admin). What the rules allow is decided in `auth.protections`.
"""

import sqlite3
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer

from hubproxy.auth import accounts
from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.protections import invalid_rule
from hubproxy.cli.admin_api import is_remote
from hubproxy.cli.admin_support import Json, change, fail, remote
from hubproxy.cli.output import emit, table
from hubproxy.cli.registry import registry_path
from hubproxy.constants import REPO_TYPES, RepoType
from hubproxy.hub.registry import delete_rule, load_rules, project_rules, store_rule
from hubproxy.naming import repo_ref
from hubproxy.ref_rules import DEFAULT_MIN_ROLE, ProtectionRule


def _repo_type(value: str) -> RepoType:
    if value not in REPO_TYPES:
        raise fail(f"unknown repo type {value!r}", 2)
    typed: RepoType = value
    return typed


def _lines(rules: list[dict[str, Any]], target: str) -> list[str]:
    if not rules:
        return [f"{target} has no protection rules"]
    rows = [["PATTERN", "MIN ROLE", "IMMUTABLE", "VIA PR", "SCOPE"]]
    rows += [
        [rule["pattern"], rule["minRole"], "yes" if rule["immutable"] else "no",
         "yes" if rule["viaPr"] else "no", rule["scope"]]
        for rule in rules
    ]  # fmt: skip
    return table(rows)


def _remote_path(target: str, project: bool, repo_type: str) -> str:
    if project:
        return f"/api/hubproxy/projects/{quote(target, safe='')}/protections"
    return registry_path(repo_type, target, "protections")


def _local(
    context: typer.Context,
    target: str,
    project: bool,
    repo_type: str,
    rule: ProtectionRule | None,
    remove: str | None,
) -> list[dict[str, Any]]:
    """The change on the data dir, in one transaction; the rules afterwards."""
    ref = None if project else repo_ref(_repo_type(repo_type), target)

    def apply(connection: sqlite3.Connection) -> list[dict[str, Any]]:
        if ref is not None:
            found = connection.execute(
                "SELECT 1 FROM hub_repos WHERE repo_type = ? AND repo_id = ?",
                (ref.repo_type, ref.repo_id),
            ).fetchone()
            if found is None:
                raise accounts.AccountNotFound(f"no hosted {repo_type} {target!r}")
        else:
            accounts.get_project(connection, target)  # AccountNotFound when there is none
        on_project = None if ref else target
        if rule is not None:
            store_rule(connection, rule, "cli", repo=ref, project=on_project)
        if remove is not None and not delete_rule(connection, remove, repo=ref, project=on_project):
            raise accounts.AccountNotFound(f"no protection rule {remove!r} on {target}")
        rules = load_rules(connection, ref) if ref else project_rules(connection, target)
        return [item.document() for item in rules]

    what = f"protect {rule.pattern}" if rule else f"unprotect {remove}" if remove else None
    return change(
        context,
        apply,
        (lambda _: AuditRecord("protection_change", repo_id=target, reason=what)) if what else None,
    )


def protect_command(
    context: typer.Context,
    target: Annotated[str, typer.Argument(help="A hosted repo (namespace/name), or a project.")],
    pattern: Annotated[
        str | None, typer.Argument(help="Ref name or pattern ('v*'); none: list the rules.")
    ] = None,
    min_role: Annotated[
        str, typer.Option(help="The least role that may change matching refs.")
    ] = DEFAULT_MIN_ROLE,
    immutable: Annotated[bool, typer.Option(help="Never moved or deleted once made.")] = False,
    via_pr: Annotated[
        bool, typer.Option(help="Changed only by merging a pull request (a maintainer merges).")
    ] = False,
    project: Annotated[
        bool, typer.Option(help="TARGET is a project: rules for all its repos.")
    ] = False,
    remove: Annotated[bool, typer.Option(help="Remove the rule for PATTERN.")] = False,
    repo_type: Annotated[str, typer.Option("--type", help="model, dataset or space.")] = "model",
    as_json: Json = False,
) -> None:
    """Protect the refs of TARGET matching PATTERN; without PATTERN, list its rules."""
    rule = None
    if pattern is not None and not remove:
        problem = invalid_rule(pattern, min_role)
        if problem is not None:
            raise fail(problem, 2)
        rule = ProtectionRule(pattern, min_role, immutable, via_pr)
    if remove and pattern is None:
        raise fail("--remove needs the PATTERN of the rule to remove", 2)
    removed = pattern if remove else None
    if is_remote(context):
        path = _remote_path(target, project, repo_type)
        if rule is not None:
            body = {"pattern": rule.pattern, "minRole": rule.min_role,
                    "immutable": rule.immutable, "viaPr": rule.via_pr}  # fmt: skip
            rules = remote(context, "PUT", path, body)
        elif removed is not None:
            rules = remote(context, "DELETE", f"{path}?{urlencode({'pattern': removed})}")
        else:
            rules = remote(context, "GET", path)
    else:
        rules = _local(context, target, project, repo_type, rule, removed)
    emit(as_json, rules, _lines(rules, target))


def register(app: typer.Typer) -> None:
    """Add `protect` to the `hubproxy admin` app."""
    app.command("protect")(protect_command)
