"""The Xet server tests run against the private hub of `tests/hub` (a real `hubproxy serve`)."""

from tests.hub.conftest import hub  # noqa: F401 - the session fixture, shared by import
