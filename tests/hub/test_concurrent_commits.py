"""Commits racing for one branch: the branch moves by compare-and-swap, so concurrent commits
without a parent all land, one after another, with none lost; and of concurrent commits naming
the same parent exactly one wins, the others get 412.
"""

from concurrent.futures import ThreadPoolExecutor

from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.hub.conftest import Hub

WRITERS = 8


def test_concurrent_commits_are_all_kept(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("racing")
    initial = hub.head(repo_id)

    def commit(index: int) -> str:
        operations = [CommitOperationAdd(f"writer-{index}.txt", b"writer %d\n" % index)]
        return api.create_commit(repo_id, operations, commit_message=f"Writer {index}").oid

    with ThreadPoolExecutor(WRITERS) as pool:
        oids = list(pool.map(commit, range(WRITERS)))

    assert len(set(oids)) == WRITERS
    history = api.list_repo_commits(repo_id)
    assert len(history) == WRITERS + 1
    assert history[-1].commit_id == initial
    assert {commit.commit_id for commit in history[:-1]} == set(oids)
    assert history[0].commit_id == hub.head(repo_id)
    assert api.list_repo_files(repo_id) == sorted(
        [".gitattributes", *(f"writer-{index}.txt" for index in range(WRITERS))]
    )


def test_of_commits_on_the_same_parent_one_wins(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("same-parent")
    parent = hub.head(repo_id)

    def commit(index: int) -> str | int:
        operations = [CommitOperationAdd(f"writer-{index}.txt", b"writer %d\n" % index)]
        try:
            return api.create_commit(
                repo_id, operations, commit_message=f"Writer {index}", parent_commit=parent
            ).oid
        except HfHubHTTPError as error:
            return error.response.status_code

    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(commit, range(WRITERS)))

    winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert len(winners) == 1, outcomes
    assert sorted(outcome for outcome in outcomes if isinstance(outcome, int)) == [412] * (
        WRITERS - 1
    )
    assert hub.head(repo_id) == winners[0]
    assert len(api.list_repo_files(repo_id)) == 2
