"""`Signer`: one key per data dir, kept across restarts; a signature covers every field, in order."""

from pathlib import Path

from hubproxy.db import Database
from hubproxy.signing import Signer


async def test_signatures_cover_each_field_and_survive_a_restart(tmp_path: Path) -> None:
    database = Database(tmp_path / "hubproxy.sqlite3")
    await database.open()
    signature = await Signer(database).sign("model", "team/repo", "42")
    again = Signer(database)  # as after a restart: the key is read back, not made anew
    assert await again.verify(signature, "model", "team/repo", "42")
    assert not await again.verify(signature, "model", "team/repo", "43")
    assert not await again.verify(signature, "model", "team/repo")
    assert not await again.verify(signature, "model", "team/repo\n42")
    assert not await again.verify(signature, "team/repo", "model", "42")
    await database.aclose()
    other = Database(tmp_path / "other.sqlite3")
    await other.open()
    assert not await Signer(other).verify(signature, "model", "team/repo", "42")
    await other.aclose()
