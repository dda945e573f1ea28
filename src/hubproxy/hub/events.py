"""What happened to a hosted repo, told to whoever listens (webhooks), after it happened.

`HostedRepoWriter` and `HubDiscussions` publish one `HubEvent` per change once its transaction
has committed; a change that failed publishes nothing. The event names the change the way
huggingface.co's webhooks do (`action` and `scope`) and carries the facts a payload needs, so
listeners never read the repo again. `EventPublisher` is all the hub knows of its listeners:
`publish` must not fail and must not wait on anything slow (the request that made the change
is still waiting for its answer).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hubproxy.naming import RepoRef

EventAction = Literal["create", "update", "delete", "move"]
# `repo` (the repo itself), `repo.content` (commits, refs), `repo.config` (settings),
# `discussion`, `discussion.comment`: huggingface.co's scopes.
EventScope = Literal["repo", "repo.content", "repo.config", "discussion", "discussion.comment"]


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """A ref that moved: `old` None when it was created, `new` None when it was deleted."""

    ref: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class DiscussionFacts:
    """A discussion or pull request as it is after the change."""

    num: int
    title: str
    is_pull_request: bool
    status: str
    author: str
    # Pull requests: the target branch, and the merge commit once merged.
    base_branch: str | None = None
    merge_commit: str | None = None


@dataclass(frozen=True, slots=True)
class CommentFacts:
    comment_id: str
    author: str
    content: str
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One change to a hosted repo (see the module docstring). `private` and `gated` are the
    repo's visibility when the change happened: a deleted repo's is still known."""

    action: EventAction
    scope: EventScope
    repo: RepoRef
    private: bool
    gated: str = ""
    # The default branch's head after the change, when the repo still exists.
    head_sha: str | None = None
    updated_refs: tuple[RefUpdate, ...] = ()
    discussion: DiscussionFacts | None = None
    comment: CommentFacts | None = None
    moved_to: RepoRef | None = None
    updated_config: Mapping[str, object] = field(default_factory=dict)
    # Who made the change (audit and logs; not part of the Hub's payload).
    actor: str = ""

    @property
    def domain(self) -> str:
        """The webhook domain the event belongs to: `repo` or `discussion`."""
        return self.scope.split(".", 1)[0]


class EventPublisher(Protocol):
    """Where hub changes are told. Never raises; never waits on the network."""

    async def publish(self, event: HubEvent) -> None: ...


class NoListeners:
    """The publisher of a hub nobody listens to (tools, tests of the hub alone)."""

    async def publish(self, event: HubEvent) -> None:
        return None


NO_LISTENERS: EventPublisher = NoListeners()
