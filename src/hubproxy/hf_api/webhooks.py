"""Webhooks as huggingface_hub manages them: `/api/settings/webhooks[/{id}[/enable|disable]]`.

`GET /api/settings/webhooks` lists the caller's webhooks (a JSON list); `POST` creates one
(`{"watched", "domains", "url", "secret"}`) and `GET|POST|DELETE .../{id}` reads, changes and
deletes it, each answering `{"webhook": ...}` in `WebhookInfo`'s shape. `POST .../{id}/enable`
and `.../disable` switch it. hubproxy adds `GET .../{id}/deliveries`: the delivery log.

huggingface_hub's `update_webhook` always sends `watched` (`[]` when the caller gave none):
an empty list there leaves the watched items as they are. Jobs (`jobSourceId`) are not
offered. Decisions are `auth/webhooks.py`'s; the dispatcher has already refused robots and
anonymous callers.
"""

from typing import Any

from starlette.responses import JSONResponse, Response

from hubproxy.auth.authz import enforce
from hubproxy.auth.webhooks import may_manage_webhook, may_manage_webhooks, may_watch
from hubproxy.constants import REPO_TYPE_BY_PLURAL
from hubproxy.errors import BadRequest, NotImplementedYet
from hubproxy.hf_api.bodies import json_object
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.hosted import hosted_repo
from hubproxy.naming import repo_ref
from hubproxy.webhooks.addresses import check_url
from hubproxy.webhooks.store import WatchedItem, Webhook

DOMAINS = ("repo", "discussion")
WATCH_TYPES = ("user", "org", "model", "dataset", "space")
MAX_WATCHED = 100
MAX_SECRET = 256
# Webhooks one user may have: each event is matched against every enabled webhook.
MAX_WEBHOOKS_PER_USER = 100
_REPO_TYPES = frozenset(REPO_TYPE_BY_PLURAL.values())


def _answer(webhook: Webhook, status: int = 200) -> JSONResponse:
    return JSONResponse({"webhook": webhook.as_json()}, status)


async def _watched(call: Call, value: object) -> list[WatchedItem]:
    """`watched`: 1 to `MAX_WATCHED` `{type, name}` the caller may read (`may_watch`)."""
    if not isinstance(value, list) or not value or len(value) > MAX_WATCHED:
        raise BadRequest(f"'watched' must be a list of 1 to {MAX_WATCHED} {{type, name}} items")
    items: list[WatchedItem] = []
    for entry in value:
        if not isinstance(entry, dict) or entry.get("type") not in WATCH_TYPES:
            raise BadRequest(f"Each watched item needs a 'type' among {', '.join(WATCH_TYPES)}")
        kind, name = entry["type"], entry.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("Each watched item needs a 'name'")
        visibility = None
        if kind in _REPO_TYPES:
            found, seen = await hosted_repo(call, repo_ref(kind, name))
            if found is not None and await call.hub.repos.get_repo(found) is not None:
                name, visibility = found.repo_id, seen
        enforce(may_watch(call.principal, kind, name, call.snapshot, visibility))
        if kind in ("user", "org"):
            project = call.snapshot.project_of(name)
            name = project.name if project is not None else name
        item = WatchedItem(kind, name)
        if item not in items:
            items.append(item)
    return items


def _domains(value: object) -> list[str]:
    if not isinstance(value, list) or not value or any(domain not in DOMAINS for domain in value):
        raise BadRequest(f"'domains' must be a non-empty list of {', '.join(DOMAINS)}")
    return [domain for domain in DOMAINS if domain in value]


def _secret(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SECRET:
        raise BadRequest(f"'secret' must be a string of at most {MAX_SECRET} characters")
    return value


def _refuse_jobs(payload: dict[str, Any]) -> None:
    if "jobSourceId" in payload or "secrets" in payload:
        raise NotImplementedYet("hubproxy webhooks call URLs; Jobs are not offered")


async def webhooks(call: Call) -> Response:
    """List (GET) or create (POST) the caller's webhooks."""
    principal = call.principal
    store = call.services.webhooks
    if call.request.method == "GET":
        enforce(may_manage_webhooks(principal, change=False))
        return JSONResponse([webhook.as_json() for webhook in await store.owned(principal.name)])
    enforce(may_manage_webhooks(principal, change=True))
    payload = await json_object(call.request)
    _refuse_jobs(payload)
    if len(await store.owned(principal.name)) >= MAX_WEBHOOKS_PER_USER:
        raise BadRequest(f"A user may have at most {MAX_WEBHOOKS_PER_USER} webhooks")
    url = check_url(payload.get("url"), call.settings.webhook_networks)
    watched = await _watched(call, payload.get("watched"))
    domains = _domains(payload.get("domains", list(DOMAINS)))
    created = await store.create(
        principal.name, url, watched, domains, _secret(payload.get("secret"))
    )
    call.record.path = f"webhooks/{created.id}"
    call.record.reason = f"watching {_describe(created)}"
    return _answer(created)


async def _own(call: Call) -> Webhook:
    webhook = await call.services.webhooks.get(call.route.subject)
    call.record.path = f"webhooks/{webhook.id}"
    enforce(may_manage_webhook(call.principal, webhook.owner))
    return webhook


async def webhook(call: Call) -> Response:
    """Read (GET), change (POST) or delete (DELETE) one of the caller's webhooks."""
    method = call.request.method
    enforce(may_manage_webhooks(call.principal, change=method != "GET"))
    found = await _own(call)
    store = call.services.webhooks
    if method == "GET":
        return _answer(found)
    if method == "DELETE":
        await store.delete(found.id)
        return JSONResponse({"deleted": True})
    payload = await json_object(call.request)
    _refuse_jobs(payload)
    url = None
    if payload.get("url") is not None:
        url = check_url(payload["url"], call.settings.webhook_networks)
    watched = None
    if payload.get("watched") not in (None, []):
        watched = await _watched(call, payload["watched"])
    domains = _domains(payload["domains"]) if payload.get("domains") is not None else None
    updated = await store.update(
        found.id, url=url, watched=watched, domains=domains, secret=_secret(payload.get("secret"))
    )
    call.record.reason = f"watching {_describe(updated)}"
    return _answer(updated)


async def switch(call: Call) -> Response:
    """`POST .../{id}/enable` and `.../disable`."""
    enforce(may_manage_webhooks(call.principal, change=True))
    found = await _own(call)
    disabled = call.route.path == "disable"
    updated = await call.services.webhooks.update(found.id, disabled=disabled)
    call.record.reason = "disabled" if disabled else "enabled"
    return _answer(updated)


async def deliveries(call: Call) -> Response:
    """`GET .../{id}/deliveries`: the webhook's deliveries, newest first."""
    enforce(may_manage_webhooks(call.principal, change=False))
    found = await _own(call)
    listed = await call.services.webhooks.deliveries(found.id)
    return JSONResponse([delivery.as_json() for delivery in listed])


def _describe(webhook: Webhook) -> str:
    items = ", ".join(f"{item.type}:{item.name}" for item in webhook.watched)
    return f"{items} ({', '.join(webhook.domains)})"
