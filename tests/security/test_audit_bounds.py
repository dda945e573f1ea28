"""Audit records bound every client-supplied field: a huge User-Agent, path or revision is
stored cut to a bound, not whole."""

import time
from typing import Any

from tests.security.conftest import TARGET_REPO, Fortress

USER_AGENT_BOUND = 512
FIELD_BOUND = 1024


def audit_records(fortress: Fortress, **query: str) -> list[dict[str, Any]]:
    with fortress.client(fortress.admin_token) as client:
        answer = client.get("/api/hubproxy/admin/audit", params=query)
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()
    return records


def test_huge_client_fields_are_stored_bounded(fortress: Fortress) -> None:
    # Under any header size limit, far over the audit bound.
    user_agent = "hostile/" + "u" * 48 * 1024
    path = "/".join(["d" * 200] * 20) + "/file.bin"
    revision = "r" * 3000
    with fortress.client() as client:
        answer = client.get(
            f"/{TARGET_REPO}/resolve/{revision}/{path}", headers={"User-Agent": user_agent}
        )
    assert answer.status_code in (400, 401, 404), answer.text
    answer_path = f"/{TARGET_REPO}/resolve/main/{path}"
    with fortress.client() as client:
        assert client.get(answer_path, headers={"User-Agent": user_agent}).status_code == 401
    deadline = time.monotonic() + 20
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not found:
        found = [
            record
            for record in audit_records(fortress, action="download", denied="true")
            if (record["user_agent"] or "").startswith("hostile/")
        ]
        time.sleep(0.2)
    assert found, "the denied downloads were not audited"
    for record in found:
        assert len(record["user_agent"]) <= USER_AGENT_BOUND
        for name, value in record.items():
            if isinstance(value, str):
                assert len(value) <= FIELD_BOUND, name
    assert any(record["path"] and record["path"].startswith("d" * 200) for record in found)
