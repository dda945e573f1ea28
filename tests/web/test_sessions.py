"""Session cookies and CSRF tokens: signed with the data dir's key, bound to what they name."""

from pathlib import Path

from hubproxy.db import Database
from hubproxy.signing import Signer
from hubproxy.web import sessions


async def test_session_cookies_are_signed_and_expire(tmp_path: Path) -> None:
    database = Database(tmp_path / "hubproxy.sqlite3")
    await database.open()
    signer = Signer(database)
    cookie = await sessions.session_cookie(signer, "tok_0123456789ab", now=1000)
    assert await sessions.read_session(signer, cookie, 60, now=1030) == sessions.Session(
        "tok_0123456789ab", 1000
    )
    assert await sessions.read_session(signer, cookie, 60, now=1061) is None
    token_id, issued, signature = cookie.split(".")
    assert (
        await sessions.read_session(signer, f"tok_ffffffffffff.{issued}.{signature}", 60, now=1030)
        is None
    )
    assert (
        await sessions.read_session(signer, f"{token_id}.2000.{signature}", 6000, now=2001) is None
    )
    for broken in ("", "x", "a.b.c", cookie + "0", "." * 300):
        assert await sessions.read_session(signer, broken, 60, now=1030) is None
    await database.aclose()


async def test_csrf_tokens_belong_to_one_browser_and_session(tmp_path: Path) -> None:
    database = Database(tmp_path / "hubproxy.sqlite3")
    await database.open()
    signer = Signer(database)
    nonce = sessions.new_nonce()
    token = await sessions.csrf_token(signer, nonce, "tok_0123456789ab")
    assert await sessions.csrf_matches(signer, nonce, "tok_0123456789ab", token)
    assert not await sessions.csrf_matches(signer, nonce, None, token)
    assert not await sessions.csrf_matches(signer, sessions.new_nonce(), "tok_0123456789ab", token)
    assert not await sessions.csrf_matches(signer, nonce, "tok_0123456789ab", None)
    assert not await sessions.csrf_matches(signer, "not-a-nonce", "tok_0123456789ab", token)
    await database.aclose()
