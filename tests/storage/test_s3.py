"""What only the S3 backend promises: multipart for large objects, crash leftovers aborted,
presigned URLs that work without credentials."""

import os

import httpx

from hubproxy.cache.storage import Storage
from hubproxy.cache.storage_transfer import S3Etag
from tests.conftest import S3Service
from tests.storage.conftest import s3_backend

KEY = "chunks/sha256/ab/cd/abcd/00000000"


async def test_interrupted_multipart_upload_is_aborted_at_start(s3_service: S3Service) -> None:
    backend = s3_backend(s3_service, "s3-crash")
    storage = Storage(backend)
    writer = await storage.open_writer(KEY)
    await writer.write(os.urandom(6 * 1024 * 1024))  # more than a part: the upload has begun
    client = await backend.client()
    uploads = await client.list_multipart_uploads(Bucket=s3_service.bucket, Prefix="s3-crash/")
    assert len(uploads.get("Uploads", [])) == 1
    # The process dies here; the next start cleans up.
    restarted = Storage(s3_backend(s3_service, "s3-crash"))
    assert await restarted.remove_incomplete() == 1
    uploads = await client.list_multipart_uploads(Bucket=s3_service.bucket, Prefix="s3-crash/")
    assert uploads.get("Uploads", []) == []
    assert [key async for key in restarted.list("")] == []
    await writer.abort()
    await restarted.aclose()
    await storage.aclose()


async def test_presigned_url_serves_the_object(s3_service: S3Service) -> None:
    storage = Storage(s3_backend(s3_service, "s3-presign"))
    await storage.put_bytes(KEY, b"presigned bytes")
    try:
        url = await storage.presign(KEY, 60)
        assert url is not None
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        assert response.status_code == 200
        assert response.content == b"presigned bytes"
    finally:
        await storage.delete(KEY)
        await storage.aclose()


async def test_predicted_etags_are_the_etags_s3_gives(s3_service: S3Service) -> None:
    """`migrate-to --storage` proves a copy by the ETag it predicts from the local bytes: one
    PUT below a part, "MD5 of the parts' MD5s-N" from one part on (an exact multiple too)."""
    backend = s3_backend(s3_service, "s3-etags")
    storage = Storage(backend)
    part = backend.part_size
    try:
        for size in (0, 1000, part - 1, part, part + 1, 2 * part):
            body = os.urandom(size)
            writer = await storage.open_writer(KEY)
            for start in range(0, size, 3 * 1024 * 1024):  # pieces that straddle the parts
                await writer.write(body[start : start + 3 * 1024 * 1024])
            info = await writer.commit()
            predicted = S3Etag(size, part)
            predicted.update(body[:7])
            predicted.update(body[7:])
            assert info.etag == predicted.hexdigest(), size
            assert (await storage.stat(KEY)).etag == info.etag
            assert ("-" in info.etag) is (size >= part)
    finally:
        await storage.delete(KEY)
        await storage.aclose()
