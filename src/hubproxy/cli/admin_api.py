"""The admin API as `hubproxy admin --endpoint` sees it: its paths, and its JSON documents
turned back into the records the local commands print, so that both modes print the same
tables and JSON from the same code."""

from typing import Any
from urllib.parse import quote, urlencode

import typer

from hubproxy.auth.accounts import Policy, Project, User
from hubproxy.auth.audit import FIELDS, AuditRecord
from hubproxy.cli.admin_support import admin_context

ADMIN_API = "/api/hubproxy/admin"


def is_remote(context: typer.Context) -> bool:
    """Whether the command works through a running server (`--endpoint`)."""
    return admin_context(context).endpoint is not None


def admin_path(*segments: str, **query: str | float | bool | None) -> str:
    """`/api/hubproxy/admin/<segments>` (each quoted) with the query parameters given."""
    path = "/".join((ADMIN_API, *(quote(segment, safe="") for segment in segments)))
    present = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in query.items()
        if value is not None
    }
    return f"{path}?{urlencode(present)}" if present else path


def user_from_api(answer: dict[str, Any]) -> User:
    return User(
        answer["name"], answer["fullname"], answer["email"], answer["isAdmin"],
        answer["disabled"], answer["created"],
    )  # fmt: skip


def project_from_api(answer: dict[str, Any]) -> Project:
    return Project(
        answer["name"], answer["kind"], answer["public"], answer["upstreamNamespace"],
        answer["created"], fullname=answer.get("fullname", ""),
    )  # fmt: skip


def policy_from_api(answer: dict[str, Any]) -> Policy:
    return Policy(answer["mode"], tuple(answer["patterns"]), answer["requireAuth"])


def audit_record_from_api(answer: dict[str, Any]) -> AuditRecord:
    # A newer server may send fields this CLI does not know.
    return AuditRecord(**{name: answer[name] for name in FIELDS if name in answer})
