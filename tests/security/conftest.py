"""The governed site of tests/governance (projects, roles, robots), shared by these tests."""

from tests.governance.conftest import governed_hub, site  # noqa: F401 - fixtures
