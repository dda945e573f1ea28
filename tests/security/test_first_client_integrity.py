"""The first client of a cold file never receives a corrupt file as a whole one.

Upstream sends the file with one byte flipped (its headers and hashes as announced). The first
client's response is held back at its last piece until the bytes hash to the file's name; on a
mismatch the connection breaks short of `Content-Length`, the stored copy is dropped, and the
client's retry — huggingface_hub resumes with a Range request — is answered with the whole file
from the start, so the client ends with the right bytes.
"""

import hashlib
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download

from tests.fake_upstream import FakeHub, GeneratedFile
from tests.support.proxy import ProxyProcess

pytestmark = pytest.mark.clients

WEIGHTS = GeneratedFile(3_000_000, seed=23)  # twelve 256 KiB chunks


@pytest.fixture
def model(upstream: FakeHub, repo_id: str) -> str:
    upstream.add_repo(repo_id, {"weights.bin": WEIGHTS, "notes.txt": b"x" * 100_000})
    return repo_id


def test_a_corrupt_upstream_body_breaks_the_first_response_short(
    proxy: ProxyProcess, upstream: FakeHub, model: str
) -> None:
    upstream.corrupt_next_files(1)
    url = f"{proxy.url}/{model}/resolve/main/weights.bin"
    received = bytearray()

    def read_all(response: httpx.Response) -> None:
        for piece in response.iter_raw():
            received.extend(piece)

    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.HTTPError):
            read_all(response)
    # Everything but the held-back piece at most: never the whole (corrupt) file.
    assert len(received) < WEIGHTS.size
    # Asked again, the file comes whole and right (the corrupt copy was dropped).
    again = httpx.get(url, timeout=60)
    assert again.status_code == 200
    assert hashlib.sha256(again.content).hexdigest() == WEIGHTS.sha256()


def test_a_regular_file_is_checked_by_its_git_id(
    proxy: ProxyProcess, upstream: FakeHub, model: str
) -> None:
    upstream.corrupt_next_files(1)
    url = f"{proxy.url}/{model}/resolve/main/notes.txt"
    # One piece, held back whole: the mismatch is known before the first byte, so the answer
    # is a proper error instead of a broken body.
    refused = httpx.get(url, timeout=60)
    assert refused.status_code == 502
    assert refused.headers["x-error-code"] == "IntegrityError"
    assert httpx.get(url, timeout=60).content == b"x" * 100_000


def test_huggingface_hub_retries_into_the_right_file(
    proxy: ProxyProcess, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    upstream.corrupt_next_files(1)
    path = hf_hub_download(model, "weights.bin", cache_dir=tmp_path, endpoint=proxy.url)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == WEIGHTS.sha256()
