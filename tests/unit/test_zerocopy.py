"""The `http.response.zerocopysend` extension of hubproxy's uvicorn protocol (`cli/zerocopy.py`),
on a real uvicorn server with a tiny ASGI app: pieces of a file and bytes mixed in one body,
keep-alive after it, HEAD, and the Content-Length it must respect."""

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hubproxy.cli.connections import limited_protocol
from hubproxy.cli.zerocopy import ZERO_COPY_SEND, can_send_files, uvicorn_is_tested
from hubproxy.settings import Settings

CONTENT = bytes(range(256)) * 4096  # 1 MiB


def test_the_installed_uvicorn_is_one_this_extension_was_tested_with() -> None:
    assert uvicorn_is_tested(uvicorn.__version__), (
        f"uvicorn {uvicorn.__version__}: check cli/zerocopy.py against its RequestResponseCycle"
    )
    assert not uvicorn_is_tested("0.99.0")


class _Transport(asyncio.Transport):
    def __init__(self, extra: dict[str, Any]) -> None:
        super().__init__(extra)


def test_offered_only_where_sendfile_is_real() -> None:
    loop = asyncio.new_event_loop()
    try:
        plain = _Transport({"socket": object(), "sslcontext": None})
        assert can_send_files(loop, plain)
        assert not can_send_files(loop, _Transport({"socket": object(), "sslcontext": object()}))
    finally:
        loop.close()


def app_for(path: Path) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        offered = ZERO_COPY_SEND in scope.get("extensions", {})
        if scope["path"] == "/offered":
            body = b"yes" if offered else b"no"
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"%d" % len(body))]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        length = 100 + 300_000 + 5 + (len(CONTENT) - 700_000)
        if scope["path"] == "/too-long":
            length = 10
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % length)]})  # fmt: skip
        with open(path, "rb", buffering=0) as file:
            await send({"type": ZERO_COPY_SEND, "file": file, "offset": 0, "count": 100,
                        "more_body": True})  # fmt: skip
            await send({"type": ZERO_COPY_SEND, "file": file, "offset": 200_000,
                        "count": 300_000, "more_body": True})  # fmt: skip
            await send({"type": "http.response.body", "body": b"bytes", "more_body": True})
            await send({"type": ZERO_COPY_SEND, "file": file, "offset": 700_000,
                        "more_body": False})  # fmt: skip
            if scope["method"] == "GET":
                assert file.tell() == len(CONTENT)  # the position is past what went out

    return app


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "content"
    path.write_bytes(CONTENT)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(
        app_for(path), http=limited_protocol(Settings()), loop="asyncio", log_level="critical"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        while not instance.started:
            thread.join(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        instance.should_exit = True
        thread.join()
        sock.close()


def test_files_and_bytes_in_one_body_then_keep_alive(server: str) -> None:
    expected = CONTENT[:100] + CONTENT[200_000:500_000] + b"bytes" + CONTENT[700_000:]
    with httpx.Client(base_url=server) as client:
        assert client.get("/offered").content == b"yes"
        for _ in range(2):  # the same connection, twice
            response = client.get("/file")
            assert response.content == expected
        assert client.head("/file").content == b""
        assert client.get("/offered").content == b"yes"


def test_a_file_longer_than_the_content_length_breaks_the_response(server: str) -> None:
    with httpx.Client(base_url=server) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get("/too-long")
