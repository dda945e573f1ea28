"""`Announcer`: turns a committed hub change into a `HubEvent` and publishes it.

It reads what the event needs that the change itself does not say (the repo's visibility, the
default branch's head) and hands the event to the `EventPublisher`. Announcing never fails the
change it announces: the change is already committed, so an error here is logged, not raised.
"""

import logging

from hubproxy.hub.events import (
    NO_LISTENERS,
    CommentFacts,
    DiscussionFacts,
    EventAction,
    EventPublisher,
    EventScope,
    HubEvent,
    RefUpdate,
)
from hubproxy.hub.repos import BRANCH, DEFAULT_BRANCH, HubRepos, RepoRecord
from hubproxy.naming import RepoRef

logger = logging.getLogger(__name__)


class Announcer:
    """Publishes the events of one hub (see the module docstring)."""

    def __init__(self, repos: HubRepos, publisher: EventPublisher = NO_LISTENERS) -> None:
        self.repos = repos
        self.publisher = publisher

    @property
    def listening(self) -> bool:
        """Whether anybody listens (when nobody does, events are not even built)."""
        return self.publisher is not NO_LISTENERS

    async def announce(
        self,
        ref: RepoRef,
        action: EventAction,
        scope: EventScope,
        *,
        actor: str = "",
        updated_refs: tuple[RefUpdate, ...] = (),
        discussion: DiscussionFacts | None = None,
        comment: CommentFacts | None = None,
        moved_to: RepoRef | None = None,
        updated_config: dict[str, object] | None = None,
        record: RepoRecord | None = None,
    ) -> None:
        """Publish a change of `ref`; `record`: the repo as it was, for a repo now deleted."""
        if not self.listening:
            return
        try:
            current = await self.repos.get_repo(moved_to or ref)
            known = current or record
            if known is None:
                return
            head = None
            if current is not None:
                head = (await self.repos.refs(current.ref))[BRANCH].get(DEFAULT_BRANCH)
            event = HubEvent(
                action,
                scope,
                ref,
                known.private,
                known.gated,
                head_sha=head,
                updated_refs=updated_refs,
                discussion=discussion,
                comment=comment,
                moved_to=moved_to,
                updated_config=updated_config or {},
                actor=actor,
            )
            await self.publisher.publish(event)
        except Exception:
            # The change is committed; its event is lost, and the log says so.
            logger.exception("webhooks: could not announce %s %s of %s", scope, action, ref)
