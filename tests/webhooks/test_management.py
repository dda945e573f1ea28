"""huggingface_hub's webhook functions against hubproxy: create, list, get, update, disable,
enable, delete; who may manage and watch what; which URLs are refused."""

import pytest
from huggingface_hub import WebhookInfo, WebhookWatchedItem
from huggingface_hub.errors import HfHubHTTPError

from tests.governance.conftest import new_token
from tests.hub.conftest import Hub
from tests.support.webhooks import Receiver


def test_a_user_manages_webhooks_with_huggingface_hub(webhook_hub: Hub, receiver: Receiver) -> None:
    api = webhook_hub.api("developer")
    created = api.create_webhook(
        url=receiver.url,
        watched=[WebhookWatchedItem(type="org", name="team")],
        domains=["repo"],
        secret="s3cret",
    )
    assert isinstance(created, WebhookInfo)
    assert (created.url, created.secret, created.disabled) == (receiver.url, "s3cret", False)
    assert created.watched == [WebhookWatchedItem(type="org", name="team")]
    assert created.domains == ["repo"]
    assert created.job is None
    assert api.get_webhook(created.id) == created
    assert created.id in [webhook.id for webhook in api.list_webhooks()]

    repo_id = webhook_hub.new_repo("watched")
    updated = api.update_webhook(
        created.id,
        watched=[{"type": "model", "name": repo_id}],
        domains=["repo", "discussion"],
        secret="other",
    )
    assert updated.watched == [WebhookWatchedItem(type="model", name=repo_id)]
    assert (updated.domains, updated.secret, updated.url) == (
        ["repo", "discussion"], "other", receiver.url,
    )  # fmt: skip
    # huggingface_hub sends `watched: []` when none is given: the items stay.
    assert api.update_webhook(created.id, url=receiver.url + "2").watched == updated.watched
    assert api.disable_webhook(created.id).disabled is True
    assert api.get_webhook(created.id).disabled is True
    assert api.enable_webhook(created.id).disabled is False

    # Another user's webhook does not exist for them.
    with pytest.raises(HfHubHTTPError) as refused:
        webhook_hub.api("maintainer").get_webhook(created.id)
    assert refused.value.response.status_code == 404
    assert created.id not in [hook.id for hook in webhook_hub.api("maintainer").list_webhooks()]

    api.delete_webhook(created.id)
    with pytest.raises(HfHubHTTPError) as gone:
        api.get_webhook(created.id)
    assert gone.value.response.status_code == 404


def test_robots_and_anonymous_callers_manage_no_webhooks(webhook_hub: Hub) -> None:
    with webhook_hub.client("robot-team") as client:
        assert client.get("/api/settings/webhooks").status_code == 403
    with webhook_hub.client("anonymous") as client:
        assert client.get("/api/settings/webhooks").status_code == 401


@pytest.mark.parametrize(
    ("watched", "why"),
    [
        # `outsider` has no role in the private project `team`.
        ({"type": "org", "name": "team"}, "a private project of others"),
        ({"type": "model", "name": "team/anything"}, "a repo of a private project"),
        ({"type": "org", "name": "nosuchproject"}, "nothing"),
        ({"type": "user", "name": "team"}, "a project named as a user"),
    ],
)
def test_only_what_the_owner_may_read_can_be_watched(
    webhook_hub: Hub, watched: dict[str, str], why: str
) -> None:
    with pytest.raises(HfHubHTTPError) as refused:
        webhook_hub.api("outsider").create_webhook(
            url="https://hooks.example.com/x", watched=[watched]
        )
    assert refused.value.response.status_code == 404, why


def test_public_projects_and_users_can_be_watched(webhook_hub: Hub) -> None:
    api = webhook_hub.api("outsider")
    created = api.create_webhook(
        url="https://hooks.example.com/x",
        watched=[{"type": "org", "name": "open"}, {"type": "user", "name": "developer"}],
    )
    assert created.domains == ["repo", "discussion"]
    api.delete_webhook(created.id)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "http://10.0.0.8/hook",  # private
        "http://[::1]:8000/hook",  # loopback outside the allowed 127.0.0.0/8
        "ftp://hooks.example.com/x",
        "http://user:password@hooks.example.com/x",
        "not a url",
    ],
)
def test_refused_urls(webhook_hub: Hub, url: str) -> None:
    with pytest.raises(HfHubHTTPError) as refused:
        webhook_hub.api("developer").create_webhook(
            url=url, watched=[{"type": "org", "name": "team"}]
        )
    assert refused.value.response.status_code == 400
    assert refused.value.response.headers["X-Error-Code"] == "BadRequest"


def test_a_read_token_lists_webhooks_but_changes_none(webhook_hub: Hub) -> None:
    with webhook_hub.client("developer") as client:
        created = client.post(
            "/api/settings/webhooks",
            json={
                "url": "https://hooks.example.com/x",
                "watched": [{"type": "org", "name": "team"}],
            },
        )
    assert created.status_code == 200
    hook = created.json()["webhook"]["id"]
    read_token = new_token(webhook_hub.data_dir, "token", "create", "developer", "--scope", "read")
    headers = {"Authorization": f"Bearer {read_token}"}
    with webhook_hub.process.client() as client:
        assert client.get("/api/settings/webhooks", headers=headers).status_code == 200
        refused = client.delete(f"/api/settings/webhooks/{hook}", headers=headers)
    assert refused.status_code == 403
    webhook_hub.api("developer").delete_webhook(hook)
