"""Cached upstream files over Xet (`xet_downloads`), from synthetic xorbs over the chunk store.

With `all`, the default client downloads a cached LFS file through hubproxy's CAS (parallel
ranges of synthetic xorbs), byte-identical, and upstream serves it once. With the default
`hosted`, only files above `xet_download_threshold` are offered: huggingface_hub refuses plain
HTTP above 50 GB, so such a file downloads only because hubproxy offers Xet — tested with the
client's limit and the threshold both lowered. With `off`, nothing is offered.
"""

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub import hf_hub_download

from hubproxy.cas import synthetic
from hubproxy.cas.segments import plan
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile

WEIGHTS = GeneratedFile(5_000_000, seed=41)  # 77 synthetic chunks
RECONSTRUCTIONS = "/api/hubproxy/xet/v1/reconstructions/"


def naive_xorb(content: bytes, part: int) -> bytes:
    """Synthetic xorb `part` of `content`, written out whole."""
    span = content[part * synthetic.XORB_SPAN : (part + 1) * synthetic.XORB_SPAN]
    out = bytearray()
    for offset in range(0, len(span), synthetic.CHUNK_BYTES):
        data = span[offset : offset + synthetic.CHUNK_BYTES]
        length = len(data).to_bytes(3, "little")
        out += b"\x00" + length + b"\x00" + length + data
    return bytes(out)


async def test_synthetic_xorb_bytes_match_the_written_out_xorb() -> None:
    content = random.Random(5).randbytes(synthetic.XORB_SPAN + 300_000)

    async def read_file(start: int, end: int) -> AsyncIterator[bytes]:
        for offset in range(start, end, 100_000):  # pieces that cut across chunks
            yield content[offset : min(offset + 100_000, end)]

    for part in range(synthetic.parts(len(content))):
        whole = naive_xorb(content, part)
        assert synthetic.xorb_size(len(content), part) == len(whole)
        cuts = [(0, len(whole)), (0, 1), (3, 9), (8, 8 + 65536 + 9), (len(whole) - 5, len(whole))]
        cuts += [
            tuple(sorted(random.Random(part * 100 + n).sample(range(len(whole)), 2)))
            for n in range(20)
        ]
        for start, end in cuts:
            pieces = synthetic.xorb_bytes(read_file, len(content), part, start, end)
            assert b"".join([piece async for piece in pieces]) == whole[start:end], (start, end)
    # The plan over synthetic terms covers exactly the bytes asked for.
    terms, indexes = synthetic.plan_inputs("0" * 64, len(content))
    segments = plan(terms, indexes, 70_000, len(content) - 10)
    assert segments[0].skip == 70_000 - 65_536
    assert sum(segment.size for segment in segments) >= len(content) - 10 - 70_000


@pytest.fixture
def model(upstream: FakeHub, repo_id: str) -> str:
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS, "config.json": b"{}"})
    return repo_id


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_all_cached_files_download_over_xet(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    server = proxy_factory("--xet-downloads", "all")
    head = httpx.head(f"{server.url}/{model}/resolve/main/model.safetensors", timeout=30)
    assert head.headers["x-xet-hash"] == WEIGHTS.sha256()
    assert 'rel="xet-auth"' in head.headers["link"]
    # A regular file is never offered.
    assert "x-xet-hash" not in httpx.head(f"{server.url}/{model}/resolve/main/config.json").headers
    upstream.reset_stats()
    path = hf_hub_download(model, "model.safetensors", cache_dir=tmp_path, endpoint=server.url)
    assert _sha256(path) == WEIGHTS.sha256()
    assert RECONSTRUCTIONS in server.log()
    assert "/api/hubproxy/xet/v1/xorb-data/" in server.log()
    assert upstream.file_bytes_served() <= 1.05 * WEIGHTS.size  # pulled once, into the cache


def test_a_file_above_the_plain_http_limit_downloads_over_xet(
    proxy_factory: ProxyFactory, model: str, tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        # huggingface_hub's own limit (50 GB), lowered so that a test file is above it.
        patch.setattr(huggingface_hub.constants, "MAX_HTTP_DOWNLOAD_SIZE", 1_000_000)
        plain = proxy_factory("--xet-download-threshold", "1GB")  # not offered: the client refuses
        with pytest.raises(ValueError, match="too large"):
            hf_hub_download(
                model, "model.safetensors", cache_dir=tmp_path / "a", endpoint=plain.url
            )
        offered = proxy_factory("--xet-download-threshold", "1MB")  # the default mode, hosted
        path = hf_hub_download(
            model, "model.safetensors", cache_dir=tmp_path / "b", endpoint=offered.url
        )
    assert _sha256(path) == WEIGHTS.sha256()
    assert RECONSTRUCTIONS in offered.log()


def test_off_offers_nothing(proxy_factory: ProxyFactory, model: str) -> None:
    server = proxy_factory("--xet-downloads", "off")
    head = httpx.head(f"{server.url}/{model}/resolve/main/model.safetensors", timeout=30)
    assert head.status_code == 200
    assert "x-xet-hash" not in head.headers
    token = httpx.get(f"{server.url}/api/models/{model}/xet-read-token/main", timeout=30)
    assert token.status_code in (401, 404)
