"""Every kind of event reaches a receiver with huggingface.co's payload shape and the secret:
repo create/delete/visibility, commits and ref moves, discussions, comments and pull requests
(opened, pushed to, merged)."""

import io

import httpx
from huggingface_hub import WebhookPayload

from tests.hub.conftest import Hub, unique_repo_id
from tests.support.webhooks import Received, Receiver

SECRET = "webhook-secret"


def _checked(got: Received, webhook_id: str, repo_id: str) -> WebhookPayload:
    """The payload, parsed by huggingface_hub's model; the secret and repo checked."""
    assert got.headers["x-webhook-secret"] == SECRET
    assert got.headers["content-type"] == "application/json"
    payload = WebhookPayload.model_validate(got.payload)
    assert payload.webhook.id == webhook_id
    assert payload.webhook.version == 3
    assert payload.repo.name == repo_id
    assert payload.repo.type == "model"
    return payload


def test_each_event_reaches_the_receiver_in_the_hubs_shape(
    webhook_hub: Hub, receiver: Receiver
) -> None:
    api = webhook_hub.api("developer")
    webhook = api.create_webhook(url=receiver.url, watched=[{"type": "user", "name": "developer"}],
                                 secret=SECRET)  # fmt: skip
    # The developer's own namespace: they may do everything there (tags, settings, merges).
    repo_id = unique_repo_id("developer", "events")

    api.create_repo(repo_id, private=False)
    created = _checked(receiver.until("repo", "create"), webhook.id, repo_id)
    initial = created.repo.head_sha
    assert initial is not None
    assert created.repo.private is False
    assert created.repo.url.web.endswith(f"/{repo_id}")

    commit = api.upload_file(path_or_fileobj=io.BytesIO(b"hello"), path_in_repo="a.txt",
                             repo_id=repo_id)  # fmt: skip
    pushed = _checked(receiver.until("repo.content", "update"), webhook.id, repo_id)
    assert pushed.updatedRefs is not None
    assert [(ref.ref, ref.oldSha, ref.newSha) for ref in pushed.updatedRefs] == [
        ("refs/heads/main", initial, commit.oid)
    ]
    assert pushed.repo.head_sha == commit.oid

    api.create_branch(repo_id, branch="dev")
    branched = _checked(receiver.until("repo.content", "update"), webhook.id, repo_id)
    assert branched.updatedRefs is not None
    assert [(ref.ref, ref.oldSha, ref.newSha) for ref in branched.updatedRefs] == [
        ("refs/heads/dev", None, commit.oid)
    ]
    api.create_tag(repo_id, tag="v1")
    tagged = _checked(receiver.until("repo.content", "update"), webhook.id, repo_id)
    assert tagged.updatedRefs is not None
    assert tagged.updatedRefs[0].ref == "refs/tags/v1"
    api.delete_branch(repo_id, branch="dev")
    deleted_branch = _checked(receiver.until("repo.content", "update"), webhook.id, repo_id)
    assert deleted_branch.updatedRefs is not None
    assert (deleted_branch.updatedRefs[0].oldSha, deleted_branch.updatedRefs[0].newSha) == (
        commit.oid, None,
    )  # fmt: skip

    api.update_repo_settings(repo_id, private=True)
    config = receiver.until("repo.config", "update")
    assert _checked(config, webhook.id, repo_id).repo.private is True
    assert config.payload["updatedConfig"] == {"private": True}

    discussion = api.create_discussion(repo_id, title="A question", description="Why?")
    opened = _checked(receiver.until("discussion", "create"), webhook.id, repo_id)
    assert opened.discussion is not None
    assert (opened.discussion.num, opened.discussion.title) == (discussion.num, "A question")
    assert (opened.discussion.isPullRequest, opened.discussion.status) == (False, "open")
    assert opened.discussion.author.id == "developer"

    api.comment_discussion(repo_id, discussion.num, "Because.")
    commented = _checked(receiver.until("discussion.comment", "create"), webhook.id, repo_id)
    assert commented.comment is not None
    assert commented.discussion is not None
    assert (commented.comment.content, commented.comment.hidden) == ("Because.", False)
    assert commented.comment.author.id == "developer"
    api.change_discussion_status(repo_id, discussion.num, new_status="closed")
    closed = _checked(receiver.until("discussion", "update"), webhook.id, repo_id)
    assert closed.discussion is not None
    assert closed.discussion.status == "closed"

    proposal = api.upload_file(path_or_fileobj=io.BytesIO(b"proposed"), path_in_repo="b.txt",
                               repo_id=repo_id, create_pr=True)  # fmt: skip
    assert proposal.pr_num is not None
    pr_ref = _checked(receiver.until("repo.content", "update"), webhook.id, repo_id)
    assert pr_ref.updatedRefs is not None
    assert pr_ref.updatedRefs[0].ref == f"refs/pr/{proposal.pr_num}"
    assert pr_ref.updatedRefs[0].newSha == proposal.oid
    pull_request = _checked(receiver.until("discussion", "create"), webhook.id, repo_id)
    assert pull_request.discussion is not None
    assert pull_request.discussion.isPullRequest
    assert pull_request.discussion.changes is not None
    assert pull_request.discussion.changes.base == "refs/heads/main"

    api.merge_pull_request(repo_id, proposal.pr_num)
    merged_refs = _checked(receiver.until("repo.content", "update"), webhook.id, repo_id)
    assert merged_refs.updatedRefs is not None
    assert merged_refs.updatedRefs[0].ref == "refs/heads/main"
    assert merged_refs.updatedRefs[0].oldSha == commit.oid
    merged = _checked(receiver.until("discussion", "update"), webhook.id, repo_id)
    assert merged.discussion is not None
    assert merged.discussion.changes is not None
    assert merged.discussion.status == "merged"
    assert merged.discussion.changes.mergeCommitId == merged_refs.updatedRefs[0].newSha

    api.delete_repo(repo_id)
    gone = _checked(receiver.until("repo", "delete"), webhook.id, repo_id)
    assert gone.repo.private is True

    log = _deliveries(webhook_hub, webhook.id)
    assert log
    assert all(entry["state"] == "delivered" for entry in log)
    assert {entry["responseStatus"] for entry in log} == {200}
    api.delete_webhook(webhook.id)


def test_a_domain_not_watched_is_not_delivered(webhook_hub: Hub, receiver: Receiver) -> None:
    """A `repo`-only webhook gets the commit after a discussion, never the discussion."""
    api = webhook_hub.api("developer")
    repo_id = webhook_hub.new_repo("domains")
    webhook = api.create_webhook(url=receiver.url, watched=[{"type": "model", "name": repo_id}],
                                 domains=["repo"], secret=SECRET)  # fmt: skip
    api.create_discussion(repo_id, title="Not for this webhook")
    api.upload_file(path_or_fileobj=io.BytesIO(b"x"), path_in_repo="x.txt", repo_id=repo_id)
    first = receiver.next()
    assert first.payload["event"] == {"action": "update", "scope": "repo.content"}
    api.delete_webhook(webhook.id)


def _deliveries(hub: Hub, webhook_id: str, principal: str = "developer") -> list[dict[str, object]]:
    with hub.client(principal) as client:
        answer: httpx.Response = client.get(f"/api/settings/webhooks/{webhook_id}/deliveries")
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, object]] = answer.json()
    return listed
