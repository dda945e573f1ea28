"""Test data for the Xet tests, generated (never committed), and a capture CAS: the smallest
server hf_xet uploads to, keeping every xorb and shard as received so the tests can check our
parsers and hashes against what the real client computed."""

import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hf_xet
import httpx

MiB = 1024 * 1024
WORDS = b"the quick brown fox jumps over a lazy dog while hubproxy stores every xorb once ".split()


def random_data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def float_like(size: int, seed: int) -> bytes:
    """float32-looking bytes (random mantissas, few exponents): what BG4-LZ4 is for."""
    data = bytearray(random.Random(seed).randbytes(size))
    data[3::4] = bytes([0x3F]) * len(data[3::4])
    data[2::4] = bytes(value & 0x87 for value in data[2::4])
    return bytes(data)


def text_like(size: int, seed: int) -> bytes:
    """Compressible text: what plain LZ4 is for."""
    chooser = random.Random(seed)
    pieces: list[bytes] = []
    total = 0
    while total < size:
        line = b" ".join(chooser.choice(WORDS) for _ in range(12)) + b"\n"
        pieces.append(line)
        total += len(line)
    return b"".join(pieces)[:size]


def mixed(size: int, seed: int) -> bytes:
    """Random, float-like and text thirds: a xorb with all three compression schemes."""
    third = size // 3
    return (
        random_data(third, seed)
        + float_like(third, seed + 1)
        + text_like(size - 2 * third, seed + 2)
    )


@dataclass
class Captured:
    """What the capture CAS received, in order."""

    xorbs: dict[str, bytes] = field(default_factory=dict)
    shards: list[bytes] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    captured: Captured

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            pieces = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", "0")))

    def _answer(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.captured.requests.append(f"GET {self.path}")
        self._answer(404, {"error": "not here"})

    def do_POST(self) -> None:
        self.captured.requests.append(f"POST {self.path}")
        body = self._body()
        xorb = re.fullmatch(r"/v1/xorbs/default/([0-9a-f]{64})", self.path)
        if xorb:
            self.captured.xorbs[xorb.group(1)] = body
            self._answer(200, {"was_inserted": True})
        elif self.path == "/v1/shards":
            self.captured.shards.append(body)
            self._answer(200, {"result": 1})
        elif self.path == "/v1/telemetry":
            self._answer(200, {})
        else:
            self._answer(404, {"error": "not here"})


@contextlib.contextmanager
def capture_cas() -> Iterator[tuple[str, Captured]]:
    """A capture CAS on a free local port: (its URL, what it receives)."""
    captured = Captured()
    handler = type("Handler", (_Handler,), {"captured": captured})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()


def upload_with_hf_xet(endpoint: str, paths: list[Path]) -> list[str]:
    """Upload `paths` with hf_xet as huggingface_hub does; the Xet hash of each."""
    session = hf_xet.XetSession()
    commit = session.new_upload_commit(
        endpoint=endpoint, token="capture", token_expiry_unix_secs=int(time.time()) + 3600
    )
    uploads = [commit.start_upload_file(str(path), sha256=hf_xet.COMPUTE_SHA256) for path in paths]
    commit.wait_to_finish()
    return [upload.result().xet_info.hash for upload in uploads]


def serialize_shard(
    files: list[tuple[bytes, list[tuple[bytes, int, int, int]], list[bytes] | None, bytes | None]],
) -> bytes:
    """A shard as hf_xet writes one (no CAS-info section): per file its hash, terms
    `(xorb hash, unpacked bytes, first chunk, end chunk)`, verification hashes and raw sha256
    field — raw 32-byte hashes throughout. For crafting hostile shards."""
    from hubproxy.xet.shards import BOOKEND_HASH, TAG, WITH_METADATA_EXT, WITH_VERIFICATION

    def u32(value: int) -> bytes:
        return value.to_bytes(4, "little")

    out = [TAG, (2).to_bytes(8, "little"), bytes(8)]
    for file_hash, terms, verification, sha256 in files:
        flags = (WITH_VERIFICATION if verification is not None else 0) | (
            WITH_METADATA_EXT if sha256 is not None else 0
        )
        out.append(file_hash + u32(flags) + u32(len(terms)) + bytes(8))
        for xorb, unpacked, first, end in terms:
            out.append(xorb + u32(0) + u32(unpacked) + u32(first) + u32(end))
        for digest in verification or []:
            out.append(digest + bytes(16))
        if sha256 is not None:
            out.append(sha256 + bytes(16))
    out.append(BOOKEND_HASH + bytes(16))
    out.append(BOOKEND_HASH + bytes(16))
    return b"".join(out)


@dataclass
class Relayed:
    """One request the relay forwarded: method, path (with query) and the answer's status."""

    method: str
    path: str
    status: int


class _RelayHandler(_Handler):
    relay: "Relay"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        relay = self.relay
        body = self._body()
        if self.command == "GET" and "/v1/xorb-data/" in self.path and relay.take_delay():
            time.sleep(relay.delay)
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in ("host", "content-length", "connection", "transfer-encoding")
        }
        with httpx.Client(timeout=60) as client:
            answer = client.request(
                self.command, relay.target + self.path, headers=headers, content=body
            )
        relay.requests.append(Relayed(self.command, self.path, answer.status_code))
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = _forward


@dataclass
class Relay:
    """An HTTP relay in front of a server (`target`) that can hold back the next xorb-range GET
    for `delay` seconds, so that its signed URL expires on the way."""

    target: str = ""
    delay: float = 0.0
    delays_left: int = 0
    requests: list[Relayed] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take_delay(self) -> bool:
        with self._lock:
            if self.delays_left <= 0:
                return False
            self.delays_left -= 1
            return True


@contextlib.contextmanager
def relay() -> Iterator[Relay]:
    """A relay on a free local port (set its `target` before use)."""
    state = Relay()
    handler = type("Handler", (_RelayHandler,), {"relay": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
