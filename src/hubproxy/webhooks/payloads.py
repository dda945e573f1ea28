"""The payload huggingface.co POSTs for an event, built for one webhook (version 3).

The shape is huggingface_hub's `WebhookPayload`: `event` (`action`, `scope`), `repo`,
`discussion` and `comment` when the event concerns one, `updatedRefs` for ref moves, `movedTo`
for a rename, `updatedConfig` for settings, and `webhook` (`id`, `version`). hubproxy has no
object ids for repos and accounts: it sends names where the Hub sends ids (`repo.id` is the
repo id, `owner.id` the namespace), which receivers match on just as well.
"""

from typing import Any

from hubproxy.constants import URL_PREFIX_BY_REPO_TYPE
from hubproxy.hub.events import HubEvent
from hubproxy.naming import RepoRef

PAYLOAD_VERSION = 3


def _repo_urls(base_url: str, repo: RepoRef) -> dict[str, str]:
    return {
        "web": f"{base_url}/{URL_PREFIX_BY_REPO_TYPE[repo.repo_type]}{repo.repo_id}",
        "api": f"{base_url}/api/{repo.repo_type}s/{repo.repo_id}",
    }


def build_payload(event: HubEvent, webhook_id: str, base_url: str) -> dict[str, Any]:
    """The JSON document the webhook `webhook_id` receives for `event`; links start with
    `base_url`."""
    repo = event.repo
    namespace = repo.repo_id.split("/", 1)[0]
    payload: dict[str, Any] = {
        "event": {"action": event.action, "scope": event.scope},
        "repo": {
            "type": repo.repo_type,
            "name": repo.repo_id,
            "id": repo.repo_id,
            "private": event.private,
            "url": _repo_urls(base_url, repo),
            "owner": {"id": namespace},
            # The Hub's spelling, and huggingface_hub's model's.
            "headSha": event.head_sha,
            "head_sha": event.head_sha,
        },
        "webhook": {"id": webhook_id, "version": PAYLOAD_VERSION},
    }
    if event.updated_refs:
        payload["updatedRefs"] = [
            {"ref": update.ref, "oldSha": update.old, "newSha": update.new}
            for update in event.updated_refs
        ]
    if event.moved_to is not None:
        payload["movedTo"] = {
            "name": event.moved_to.repo_id,
            "owner": {"id": event.moved_to.repo_id.split("/", 1)[0]},
        }
    if event.updated_config:
        payload["updatedConfig"] = dict(event.updated_config)
    discussion = event.discussion
    if discussion is not None:
        web = f"{_repo_urls(base_url, repo)['web']}/discussions/{discussion.num}"
        api = f"{base_url}/api/{repo.repo_type}s/{repo.repo_id}/discussions/{discussion.num}"
        described: dict[str, Any] = {
            "id": f"{repo.repo_id}#{discussion.num}",
            "num": discussion.num,
            "author": {"id": discussion.author},
            "url": {"web": web, "api": api},
            "title": discussion.title,
            "isPullRequest": discussion.is_pull_request,
            "status": discussion.status,
            "pinned": False,
        }
        if discussion.is_pull_request and discussion.base_branch is not None:
            described["changes"] = {
                "base": f"refs/heads/{discussion.base_branch}",
                "mergeCommitId": discussion.merge_commit,
            }
        payload["discussion"] = described
        comment = event.comment
        if comment is not None:
            payload["comment"] = {
                "id": comment.comment_id,
                "author": {"id": comment.author},
                "hidden": comment.hidden,
                "content": None if comment.hidden else comment.content,
                "url": {"web": f"{web}#{comment.comment_id}"},
            }
    return payload
