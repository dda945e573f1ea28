"""Delivery: retried after a receiver failure, kept across a restart (queued in the metadata
store), re-authorized when sent (a removed member stops receiving), logged per webhook and
audited."""

import io
import time
from typing import Any

from tests.hub.conftest import Hub
from tests.support.proxy import free_port
from tests.support.webhooks import WAIT_SECONDS, Receiver

SECRET = "retry-secret"


def _deliveries(hub: Hub, webhook_id: str, principal: str) -> list[dict[str, Any]]:
    with hub.client(principal) as client:
        answer = client.get(f"/api/settings/webhooks/{webhook_id}/deliveries")
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()
    return listed


def _finished(hub: Hub, webhook_id: str, principal: str, count: int) -> list[dict[str, Any]]:
    """The log once `count` deliveries are no longer pending (polled: the deliverer runs in
    the server)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        log = _deliveries(hub, webhook_id, principal)
        done = [entry for entry in log if entry["state"] != "pending"]
        if len(done) >= count:
            return log
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


def _commit(hub: Hub, repo_id: str, principal: str = "developer") -> str:
    name = f"file-{time.monotonic_ns()}.txt"
    info = hub.api(principal).upload_file(
        path_or_fileobj=io.BytesIO(name.encode()), path_in_repo=name, repo_id=repo_id
    )
    return info.oid


def test_a_failed_delivery_is_retried(webhook_hub: Hub, receiver: Receiver) -> None:
    repo_id = webhook_hub.new_repo("retry")
    api = webhook_hub.api("developer")
    webhook = api.create_webhook(url=receiver.url, watched=[{"type": "model", "name": repo_id}],
                                 secret=SECRET)  # fmt: skip
    receiver.failures = 1
    sha = _commit(webhook_hub, repo_id)
    got = receiver.next()
    assert got.payload["updatedRefs"][0]["newSha"] == sha
    assert got.headers["x-webhook-secret"] == SECRET
    assert receiver.answered == [500, 200]
    [entry] = _finished(webhook_hub, webhook.id, "developer", 1)
    assert (entry["state"], entry["attempts"], entry["responseStatus"]) == ("delivered", 2, 200)
    assert entry["event"] == "repo.content/update"
    with webhook_hub.client() as client:
        metrics = client.get("/metrics").text
    assert 'hubproxy_webhook_deliveries_total{outcome="retried"}' in metrics
    assert 'hubproxy_webhook_deliveries_total{outcome="delivered"}' in metrics
    api.delete_webhook(webhook.id)


def test_queued_deliveries_survive_a_crash(webhook_hub: Hub) -> None:
    """Queued while nothing listens, the server killed (no shutdown code runs); after a
    restart, delivered."""
    port = free_port()
    repo_id = webhook_hub.new_repo("restart")
    api = webhook_hub.api("developer")
    webhook = api.create_webhook(url=f"http://127.0.0.1:{port}/hook",
                                 watched=[{"type": "model", "name": repo_id}])  # fmt: skip
    sha = _commit(webhook_hub, repo_id)
    # The first attempt fails (connection refused) and is queued again.
    deadline = time.monotonic() + WAIT_SECONDS
    while not (log := _deliveries(webhook_hub, webhook.id, "developer"))[0]["attempts"]:
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert log[0]["state"] == "pending"
    assert log[0]["error"]
    webhook_hub.process.kill()
    receiver = Receiver(port)
    try:
        webhook_hub.process.start()
        got = receiver.next()
        assert got.payload["updatedRefs"][0]["newSha"] == sha
        [entry] = _finished(webhook_hub, webhook.id, "developer", 1)
        assert entry["state"] == "delivered"
        assert entry["attempts"] >= 2
    finally:
        receiver.close()
    api.delete_webhook(webhook.id)


def test_a_removed_member_no_longer_receives(webhook_hub: Hub, receiver: Receiver) -> None:
    """`viewer` watches the private project `team`, then is removed from it: the next event
    is skipped (the developer's webhook, still a member, gets it)."""
    repo_id = webhook_hub.new_repo("removed")
    viewer = webhook_hub.api("viewer").create_webhook(
        url=receiver.url, watched=[{"type": "org", "name": "team"}]
    )
    control = Receiver()
    try:
        member = webhook_hub.api("developer").create_webhook(
            url=control.url, watched=[{"type": "model", "name": repo_id}]
        )
        first = _commit(webhook_hub, repo_id)
        assert receiver.until("repo.content", "update", repo_id).payload["repo"]["head_sha"] == (
            first
        )
        with webhook_hub.client("admin") as client:
            removed = client.delete("/api/organizations/team/members/viewer")
        assert removed.status_code in (200, 204), removed.text
        second = _commit(webhook_hub, repo_id)
        assert control.next().payload["repo"]["head_sha"] == first
        assert control.next().payload["repo"]["head_sha"] == second
        log = _finished(webhook_hub, viewer.id, "viewer", 2)
        states = [(entry["state"], entry["repo"]["name"]) for entry in log][:2]
        assert states == [("skipped", repo_id), ("delivered", repo_id)]
        assert "may not see" in log[0]["error"]
        assert receiver.received.empty()
        webhook_hub.api("developer").delete_webhook(member.id)
    finally:
        control.close()
        with webhook_hub.client("admin") as client:
            client.put("/api/organizations/team/members/viewer", json={"role": "viewer"})


def test_deliveries_are_audited(webhook_hub: Hub, receiver: Receiver) -> None:
    repo_id = webhook_hub.new_repo("audited")
    webhook = webhook_hub.api("developer").create_webhook(
        url=receiver.url, watched=[{"type": "model", "name": repo_id}]
    )
    _commit(webhook_hub, repo_id)
    receiver.next()
    _finished(webhook_hub, webhook.id, "developer", 1)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        records = webhook_hub.admin("audit", "--action", "webhook_delivery", "--json").stdout
        if repo_id in records:
            break
        assert time.monotonic() < deadline, records
        time.sleep(0.1)
    created = webhook_hub.admin("audit", "--action", "webhook_create", "--json").stdout
    assert webhook.id in created
    webhook_hub.api("developer").delete_webhook(webhook.id)
