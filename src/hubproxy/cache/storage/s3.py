"""S3 (and S3-compatible) backend on aiobotocore.

Each object is one S3 object at `<prefix>/<key>`. S3 makes an object visible only when its
PUT or multipart upload completes, which is exactly the commit the Protocol asks for: a writer
keeps at most one part in memory, sends a single PUT for small objects and a multipart upload
(one part at a time, as they fill) for large ones; `abort()` aborts the multipart upload, and
`remove_incomplete()` aborts any a crash left behind. Reads are ranged GETs streamed in pieces,
never whole objects. botocore retries 5xx and throttling with backoff; the connection pool is
bounded.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from hubproxy.cache.storage.base import ObjectInfo, ObjectNotFound, StorageError

READ_PIECE_SIZE = 4 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024  # S3 wants parts of at least 5 MiB (but the last)
MAX_SINGLE_PUT = 1024 * 1024 * 1024
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


def _translate(error: Exception, key: str) -> StorageError:
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND_CODES:
            return ObjectNotFound(key)
        return StorageError(f"S3 {code} on {key}")
    return StorageError(f"S3 {type(error).__name__} on {key}")


class S3Writer:
    """Buffers up to one part; becomes visible only when the PUT / multipart upload completes."""

    def __init__(self, backend: "S3Backend", key: str) -> None:
        self._backend = backend
        self._key = key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._size = 0
        self._closed = False

    async def _send_part(self, data: bytes) -> None:
        client = await self._backend.client()
        full_key = self._backend.full_key(self._key)
        if self._upload_id is None:
            created = await client.create_multipart_upload(
                Bucket=self._backend.bucket, Key=full_key
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        answer = await client.upload_part(
            Bucket=self._backend.bucket,
            Key=full_key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def write(self, data: bytes | memoryview) -> None:
        if self._closed:
            raise ValueError("writer is closed")
        self._buffer += data
        self._size += len(data)
        try:
            while len(self._buffer) >= self._backend.part_size:
                part = bytes(self._buffer[: self._backend.part_size])
                del self._buffer[: self._backend.part_size]
                await self._send_part(part)
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, self._key) from error

    async def commit(self) -> ObjectInfo:
        if self._closed:
            raise ValueError("writer is closed")
        self._closed = True
        client = await self._backend.client()
        full_key = self._backend.full_key(self._key)
        try:
            if self._upload_id is None:
                answer = await client.put_object(
                    Bucket=self._backend.bucket, Key=full_key, Body=bytes(self._buffer)
                )
            else:
                if self._buffer:
                    await self._send_part(bytes(self._buffer))
                answer = await client.complete_multipart_upload(
                    Bucket=self._backend.bucket,
                    Key=full_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except (ClientError, BotoCoreError) as error:
            await self._abort_upload()
            raise _translate(error, self._key) from error
        finally:
            self._buffer = bytearray()
        return ObjectInfo(self._key, self._size, str(answer.get("ETag", "")).strip('"'))

    async def _abort_upload(self) -> None:
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            client = await self._backend.client()
            with contextlib.suppress(ClientError, BotoCoreError):
                await client.abort_multipart_upload(
                    Bucket=self._backend.bucket,
                    Key=self._backend.full_key(self._key),
                    UploadId=upload_id,
                )

    async def abort(self) -> None:
        self._closed = True
        self._buffer = bytearray()
        await self._abort_upload()


class S3Backend:
    """Objects in `bucket` below `prefix`; see the module docstring."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_connections: int = 32,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self._client_options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": AioConfig(
                s3={"addressing_style": "path" if path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=max_connections,
            ),
        }
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    def full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _short_key(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    async def client(self) -> Any:
        """The aiobotocore client, created on first use (it needs a running loop)."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    session = get_session()
                    self._client = await self._stack.enter_async_context(
                        session.create_client("s3", **self._client_options)
                    )
        return self._client

    async def stat(self, key: str) -> ObjectInfo:
        client = await self.client()
        try:
            answer = await client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, key) from error
        return ObjectInfo(key, int(answer["ContentLength"]), str(answer.get("ETag", "")).strip('"'))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            await self.stat(key)  # absent keys still raise ObjectNotFound
            return
        client = await self.client()
        options: dict[str, Any] = {"Bucket": self.bucket, "Key": self.full_key(key)}
        if start or end is not None:
            options["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = await client.get_object(**options)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) == "InvalidRange":
                return  # the range starts at or past the end: nothing to read
            raise _translate(error, key) from error
        except BotoCoreError as error:
            raise _translate(error, key) from error
        try:
            async with answer["Body"] as body:
                async for piece in body.iter_chunks(READ_PIECE_SIZE):
                    yield piece
        except (ClientError, BotoCoreError, OSError, aiohttp.ClientError, TimeoutError) as error:
            # A body cut by the S3 endpoint surfaces as an aiohttp error: a storage error too.
            raise _translate(error, key) from error

    async def open_writer(self, key: str) -> S3Writer:
        return S3Writer(self, key)

    async def delete(self, key: str) -> None:
        client = await self.client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except (ClientError, BotoCoreError) as error:
            translated = _translate(error, key)
            if not isinstance(translated, ObjectNotFound):
                raise translated from error

    async def list(self, prefix: str) -> AsyncIterator[str]:
        client = await self.client()
        paginator = client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.full_key(prefix)):
                for item in page.get("Contents", []):
                    yield self._short_key(item["Key"])
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, prefix) from error

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        """One streaming PUT from the file (chunks are far below S3's 5 GiB PUT limit).

        The body is read from disk as it is sent, so a chunk upload holds no chunk-sized buffer.
        """
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > MAX_SINGLE_PUT:
            return await self._import_multipart(key, path)
        client = await self.client()
        try:
            with open(path, "rb") as body:  # noqa: ASYNC230 - the client streams it in pieces
                answer = await client.put_object(
                    Bucket=self.bucket, Key=self.full_key(key), Body=body, ContentLength=size
                )
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, key) from error
        await asyncio.to_thread(path.unlink, True)
        return ObjectInfo(key, size, str(answer.get("ETag", "")).strip('"'))

    async def _import_multipart(self, key: str, path: Path) -> ObjectInfo:
        writer = await self.open_writer(key)
        try:
            with open(path, "rb") as source:  # noqa: ASYNC230 - part-sized reads of a local file
                while piece := await asyncio.to_thread(source.read, self.part_size):
                    await writer.write(piece)
            info = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        await asyncio.to_thread(path.unlink, True)
        return info

    async def compose(self, key: str, parts: Sequence[str]) -> ObjectInfo:
        """Concatenate existing objects into `key` server-side (no byte passes through here).

        Every part but the last must be at least 5 MiB (S3's multipart rule).
        """
        client = await self.client()
        full_key = self.full_key(key)
        try:
            if len(parts) == 1:
                await client.copy_object(
                    Bucket=self.bucket, Key=full_key,
                    CopySource={"Bucket": self.bucket, "Key": self.full_key(parts[0])},
                )  # fmt: skip
            else:
                upload = await client.create_multipart_upload(Bucket=self.bucket, Key=full_key)
                upload_id = upload["UploadId"]
                try:
                    copied = []
                    for number, part in enumerate(parts, start=1):
                        answer = await client.upload_part_copy(
                            Bucket=self.bucket, Key=full_key, UploadId=upload_id, PartNumber=number,
                            CopySource={"Bucket": self.bucket, "Key": self.full_key(part)},
                        )  # fmt: skip
                        copied.append(
                            {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}
                        )
                    await client.complete_multipart_upload(
                        Bucket=self.bucket, Key=full_key, UploadId=upload_id,
                        MultipartUpload={"Parts": copied},
                    )  # fmt: skip
                except BaseException:
                    with contextlib.suppress(ClientError, BotoCoreError):
                        await client.abort_multipart_upload(
                            Bucket=self.bucket, Key=full_key, UploadId=upload_id
                        )
                    raise
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, key) from error
        return await self.stat(key)

    async def remove_incomplete(self) -> int:
        client = await self.client()
        removed = 0
        paginator = client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.full_key("")):
                for upload in page.get("Uploads", []):
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, "multipart uploads") from error
        return removed

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        client = await self.client()
        url: str = await client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.full_key(key)},
            ExpiresIn=ttl_seconds,
        )
        return url

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None
