"""`hubproxy registry`: the model registry of a running hubproxy (`--endpoint URL --token T`,
or HF_ENDPOINT and HF_TOKEN): promote an alias, list aliases, show versions and lineage.

    hubproxy registry promote acme/sentiment --alias champion --to v3 --expect 1a2b3c4
    hubproxy registry aliases acme/sentiment
    hubproxy registry show acme/sentiment

Every change goes through the server, so it is authorized by the token's role, checked
against the protection rules and audited with that principal as the actor. Exit codes: 0
done, 1 failed or refused (401/403), 2 invalid input, 3 not found, 4 conflict (409: the
alias is not where `--expect` says).
"""

import os
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from hubproxy.auth.accounts import exit_code_for_status
from hubproxy.cli.common import command_group, describe_http_error, failure, location
from hubproxy.cli.output import emit, table, when

app = command_group("The model registry of a running hubproxy: aliases, versions, lineage.")
fail = failure("registry")

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RepoType = Annotated[str, typer.Option("--type", help="model, dataset or space.")]


def _plural(repo_type: str) -> str:
    if repo_type not in ("model", "dataset", "space"):
        raise fail(f"unknown repo type {repo_type!r}", 2)
    return f"{repo_type}s"


def registry_path(repo_type: str, repo_id: str, *rest: str) -> str:
    """`/api/hubproxy/{type}s/{repo}/<rest>` (each segment of `rest` quoted)."""
    if repo_id.count("/") != 1:
        raise fail(f"not a hosted repo id (namespace/name): {repo_id!r}", 2)
    quoted = "/".join(quote(segment, safe="") for segment in rest)
    return f"/api/hubproxy/{_plural(repo_type)}/{repo_id}/{quoted}"


def call_server(context: typer.Context, method: str, path: str, body: Any = None) -> Any:
    """Call the running server; HTTP errors become exit codes (see the module docstring)."""
    given = location(context)
    endpoint = (given.endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/")
    if not endpoint:
        raise fail("give the server with --endpoint URL (or HF_ENDPOINT)", 2)
    token = given.token or os.environ.get("HF_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, f"{endpoint}{path}", json=body, headers=headers,
                                 timeout=60)  # fmt: skip
    except httpx.HTTPError as error:
        raise fail(f"cannot reach {endpoint}: {describe_http_error(error)}") from None
    if response.is_error:
        message = response.headers.get("x-error-message") or response.reason_phrase
        code = response.headers.get("x-error-code")
        raise fail(
            f"{response.status_code}{f' {code}' if code else ''}: {message}",
            exit_code_for_status(response.status_code),
        )
    try:
        return response.json()
    except ValueError:
        raise fail(f"{endpoint} did not answer JSON: is it a hubproxy?") from None


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


@app.command("promote")
def promote(
    context: typer.Context,
    repo: str,
    alias: Annotated[str, typer.Option(help="The alias to move, e.g. champion.")],
    to: Annotated[str, typer.Option("--to", help="A tag, branch or commit to point it at.")],
    expect: Annotated[
        str | None,
        typer.Option(help="Move only if the alias is at this commit now ('none': if new)."),
    ] = None,
    message: Annotated[str, typer.Option(help="Why (kept in the alias' history).")] = "",
    repo_type: RepoType = "model",
    as_json: Json = False,
) -> None:
    """Point ALIAS of REPO at a version, atomically; recorded in the alias' history."""
    body: dict[str, Any] = {"target": to, "message": message}
    if expect is not None:
        body["expected"] = None if expect.lower() == "none" else expect
    answer = call_server(context, "PUT", registry_path(repo_type, repo, "aliases", alias), body)
    line = f"{repo}: {alias} {_short(answer['from'])} -> {_short(answer['to'])} ({to})"
    emit(as_json, answer, [line])


@app.command("aliases")
def aliases(
    context: typer.Context, repo: str, repo_type: RepoType = "model", as_json: Json = False
) -> None:
    """The aliases of REPO, where each points and when it was last promoted."""
    answer = call_server(context, "GET", registry_path(repo_type, repo, "aliases"))
    rows = [["ALIAS", "COMMIT", "PROMOTIONS", "LAST PROMOTED", "BY"]]
    for item in answer:
        last = item["lastPromotion"] or {}
        rows.append(
            [item["name"], _short(item["commit"]), str(item["promotions"]),
             when(last.get("at")), last.get("by", "-")]
        )  # fmt: skip
    emit(as_json, answer, table(rows) if answer else [f"{repo} has no aliases"])


def _metrics(card: dict[str, Any] | None) -> str:
    found = (card or {}).get("metrics") or []
    return ", ".join(f"{metric['name']}={metric['value']}" for metric in found) or "-"


@app.command("show")
def show(
    context: typer.Context, repo: str, repo_type: RepoType = "model", as_json: Json = False
) -> None:
    """The versions of REPO (tags and commits) with their card metadata and aliases, then the
    promotion history."""
    answer = call_server(context, "GET", registry_path(repo_type, repo, "registry"))
    rows = [["COMMIT", "DATE", "TAGS", "ALIASES", "METRICS", "BASE MODEL", "TITLE"]]
    for version in answer["versions"]:
        card = version["card"] or {}
        rows.append(
            [_short(version["commit"]), version["date"][:19], ",".join(version["tags"]) or "-",
             ",".join(version["aliases"]) or "-", _metrics(card),
             ",".join(card.get("baseModel", [])) or "-", version["title"][:40]]
        )  # fmt: skip
    lines = table(rows)
    if answer["promotions"]:
        lines += ["", "promotions:"]
        lines += [
            f"  {when(item['at'])}  {item['alias']}  {_short(item['from'])} -> "
            f"{_short(item['to'])}  by {item['by']}  {item['message']}".rstrip()
            for item in answer["promotions"]
        ]
    emit(as_json, answer, lines)


@app.command("lineage")
def lineage(
    context: typer.Context, repo: str, repo_type: RepoType = "model", as_json: Json = False
) -> None:
    """Where REPO comes from (base models, datasets) and which repos build on it."""
    answer = call_server(context, "GET", registry_path(repo_type, repo, "lineage"))
    lines = [f"{repo}"]
    lines += [f"  ancestor   {'  ' * node['depth']}{node['id']}" for node in answer["ancestors"]]
    lines += [f"  descendant {'  ' * item['depth']}{item['id']}" for item in answer["descendants"]]
    lines += [f"  dataset    {name}" for name in answer["datasets"]]
    lines += [f"  cycle      {' -> '.join(cycle)} (not followed)" for cycle in answer["cycles"]]
    emit(as_json, answer, lines)
