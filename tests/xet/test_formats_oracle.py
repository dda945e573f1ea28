"""Our Xet hashes and parsers against the real client: hf_xet uploads files to a capture CAS,
and everything it computed (xorb hashes in the URLs, file hashes, verification entries, the
sha256 in the shard) must equal what `hubproxy.xet` recomputes from the bytes it sent."""

import hashlib
import io
from dataclasses import dataclass

import hf_xet
import pytest

from hubproxy.xet.hashing import file_hash, from_hex, to_hex, verification_hash
from hubproxy.xet.shards import Shard, parse_shard
from hubproxy.xet.xorbs import MAX_XORB_BYTES, XorbIndex, parse_header, parse_xorb
from tests.xet.support import MiB, capture_cas, mixed, random_data, upload_with_hf_xet

CASES = {
    "empty": lambda: b"",
    "tiny": lambda: random_data(5000, 1),
    "one-max-chunk": lambda: random_data(128 * 1024, 2),
    "mixed": lambda: mixed(47 * MiB, 3),
    "several-xorbs": lambda: random_data(70 * MiB, 4),
}


@dataclass(repr=False)  # megabytes of content: never printed in a failure
class Upload:
    contents: dict[str, bytes]
    hashes: dict[str, str]
    oracle_hashes: dict[str, str]
    xorbs: dict[str, bytes]
    indexes: dict[str, XorbIndex]
    shards: list[Shard]


@pytest.fixture(scope="module")
def upload(tmp_path_factory: pytest.TempPathFactory) -> Upload:
    directory = tmp_path_factory.mktemp("xet-oracle")
    contents = {name: make() for name, make in CASES.items()}
    paths = []
    for name, content in contents.items():
        path = directory / name
        path.write_bytes(content)
        paths.append(path)
    with capture_cas() as (url, captured):
        uploaded = upload_with_hf_xet(url, paths)
    oracle = [info.hash for info in hf_xet.hash_files([str(path) for path in paths])]
    indexes = {
        name: parse_xorb(io.BytesIO(body), from_hex(name)) for name, body in captured.xorbs.items()
    }
    shards = [parse_shard(io.BytesIO(body), len(body)) for body in captured.shards]
    return Upload(
        contents,
        dict(zip(contents, uploaded, strict=True)),
        dict(zip(contents, oracle, strict=True)),
        captured.xorbs,
        indexes,
        shards,
    )


def test_hash_string_form_round_trips() -> None:
    digest = bytes(range(32))
    text = to_hex(digest)
    # Each 8-byte word printed as a little-endian u64.
    assert text.startswith("0706050403020100")
    assert from_hex(text) == digest
    with pytest.raises(ValueError, match="not a Xet hash"):
        from_hex("ABC")


def test_every_xorb_hashes_to_the_name_hf_xet_uploaded_it_under(upload: Upload) -> None:
    assert len(upload.xorbs) >= 2  # 117 MiB: more than one xorb of 64 MiB
    for name, body in upload.xorbs.items():
        index = upload.indexes[name]
        assert index.hex == name
        assert index.size == len(body) <= MAX_XORB_BYTES
        assert index.chunks[0].offset == 0
        assert all(a.end == b.offset for a, b in zip(index.chunks, index.chunks[1:], strict=False))
        assert index.chunks[-1].end == len(body)


def test_the_mixed_file_uses_all_three_compression_schemes(upload: Upload) -> None:
    schemes = {
        parse_header(body[chunk.offset : chunk.offset + 8], chunk.offset).scheme
        for name, body in upload.xorbs.items()
        for chunk in upload.indexes[name].chunks
    }
    assert schemes == {0, 1, 2}


def test_file_hashes_verification_and_sha256_match_hf_xet(upload: Upload) -> None:
    files = {file.hex: file for shard in upload.shards for file in shard.files}
    assert upload.hashes == upload.oracle_hashes
    for name, content in upload.contents.items():
        xet_hash = upload.hashes[name]
        described = files[xet_hash]
        assert described.size == len(content), name
        leaves = []
        for position, term in enumerate(described.terms):
            chunks = upload.indexes[to_hex(term.xorb_hash)].chunks[
                term.chunk_start : term.chunk_end
            ]
            assert sum(chunk.uncompressed_length for chunk in chunks) == term.unpacked_bytes
            leaves += [(chunk.hash, chunk.uncompressed_length) for chunk in chunks]
            assert described.verification is not None
            assert described.verification[position] == verification_hash(c.hash for c in chunks)
        assert to_hex(file_hash(leaves)) == xet_hash, name
        if content:
            assert described.sha256 == hashlib.sha256(content).hexdigest(), name
        else:
            # hf_xet describes an empty file with no terms and an all-zero sha256 field.
            assert xet_hash == "0" * 64
            assert described.terms == ()


def test_the_large_file_spans_several_xorbs(upload: Upload) -> None:
    files = {file.hex: file for shard in upload.shards for file in shard.files}
    terms = files[upload.hashes["several-xorbs"]].terms
    assert len({term.xorb_hash for term in terms}) >= 2


def test_shard_lists_the_uploaded_xorbs(upload: Upload) -> None:
    listed = {to_hex(xorb.hash): xorb for shard in upload.shards for xorb in shard.xorbs}
    assert set(listed) == set(upload.xorbs)
    for name, xorb in listed.items():
        index = upload.indexes[name]
        assert [chunk.hash for chunk in xorb.chunks] == [chunk.hash for chunk in index.chunks]
