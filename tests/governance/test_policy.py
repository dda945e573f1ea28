"""The upstream policy (allow-all, allow-list, deny-list, require-auth), changed on a running
server (in process), and the no-existence-leak rule for private repos (huggingface_hub against
a real server)."""

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import InProcessFactory
from tests.fake_upstream import FakeHub
from tests.governance.conftest import Site, admin, new_token
from tests.governance.test_tokens import eventually


def test_allow_list_deny_list_and_require_auth(
    in_process_factory: InProcessFactory, upstream: FakeHub
) -> None:
    for repo in ("open/a", "open/b", "closed/c"):
        upstream.add_repo(repo, {"f.txt": repo.encode()})
    server = in_process_factory(storage="local")
    data_dir = server.data_dir

    def file_url(repo: str) -> str:
        return f"/{repo}/resolve/main/f.txt"

    def get(url: str, token: str | None = None) -> httpx.Response:
        with server.client(token) as client:
            return client.get(url)

    def status(url: str, token: str | None = None) -> int:
        return get(url, token).status_code

    assert [status(file_url(repo)) for repo in ("open/a", "open/b", "closed/c")] == [200] * 3
    admin(data_dir, "policy", "set", "--mode", "allow-list", "--pattern", "open/*")
    # Anonymous callers get 401 RepoNotFound, as for every repo they may not see.
    assert eventually(lambda: status(file_url("closed/c")) == 401)
    assert status(file_url("open/a")) == 200
    response = get(file_url("closed/c"))
    assert response.headers["x-error-code"] == "RepoNotFound"

    admin(data_dir, "policy", "set", "--mode", "deny-list", "--pattern", "open/b")
    assert eventually(lambda: status(file_url("open/b")) == 401)
    assert status(file_url("closed/c")) == 200

    admin(data_dir, "user", "create", "dora")
    token = new_token(data_dir, "token", "create", "dora")
    admin(data_dir, "policy", "set", "--require-auth")
    assert eventually(lambda: status(file_url("open/a")) == 401)
    response = get(file_url("open/a"))
    assert response.headers["x-error-code"] == "Unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert status(file_url("open/a"), token) == 200
    shown = admin(data_dir, "policy", "show").stdout
    assert "deny-list" in shown
    assert "open/b" in shown

    # The same switch as a server setting.
    admin(data_dir, "policy", "set", "--allow-anonymous", "--mode", "allow-all")
    server.stop()
    server.start(require_auth=True)
    assert status(file_url("open/a")) == 401
    assert status(file_url("open/a"), token) == 200


def test_private_repos_answer_exactly_like_missing_ones(site: Site, governed_hub: FakeHub) -> None:
    """An outsider cannot tell a private project's repo from a repo that does not exist."""
    outsider = site.tokens["outsider"]
    assert outsider is not None
    answers = []
    for repo in ("llama/tiny", "acmepub/does-not-exist"):
        response = httpx.get(
            f"{site.url}/api/models/{repo}", headers={"Authorization": f"Bearer {outsider}"}
        )
        answers.append(
            (
                response.status_code,
                response.headers["x-error-code"],
                response.headers["x-error-message"],
                response.content,
            )
        )
    assert answers[0] == answers[1]
    assert answers[0][:2] == (404, "RepoNotFound")
    api = HfApi(endpoint=site.url, token=outsider)
    assert not api.repo_exists("llama/tiny")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("llama/tiny")
    member = HfApi(endpoint=site.url, token=site.tokens["viewer"])
    assert member.repo_exists("llama/tiny")
    with pytest.raises(HfHubHTTPError):
        member.create_repo("llama/new-repo")
