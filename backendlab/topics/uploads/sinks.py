"""Where a file part's bytes go while it streams in: memory, a local file, or S3.

Every sink has the same life: `write(data)` for each piece (fast, never blocks on the network),
`await settle()` after each body chunk (slow I/O, such as sending a full S3 part), then
`await finish()` when the file is complete (returns where it went). `await discard()` undoes it
all, before or after `finish()`: when any part of the request fails, nothing of it may remain.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

S3_PART_BYTES = 5 * 2**20  # S3's smallest part (but the last) of a multipart upload


class FileSink:
    """Writes straight to a new file in `folder` (memory: one chunk); removes it on discard."""

    def __init__(self, folder: str | os.PathLike, name: str):
        self.path = Path(folder) / name
        self._file = open(self.path, "xb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    async def settle(self) -> None:
        return None

    async def finish(self) -> dict:
        self._file.close()
        return {"stored_as": self.path.name}

    async def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class MemorySink:
    """Holds the whole file in memory, then writes it out (multer's memoryStorage): memory grows
    with the file size times the uploads in flight."""

    def __init__(self, folder: str | os.PathLike, name: str):
        self.path = Path(folder) / name
        self._pieces: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self._pieces.append(bytes(data))
        self.size += len(data)

    async def settle(self) -> None:
        return None

    async def finish(self) -> dict:
        body = b"".join(self._pieces)
        self._pieces = []
        self.path.write_bytes(body)
        return {"stored_as": self.path.name}

    async def discard(self) -> None:
        self._pieces = []
        self.path.unlink(missing_ok=True)


class S3Sink:
    """Streams to an S3 object with a multipart upload, one 5 MB part at a time, so the server
    holds one part per upload; a small file is a single PUT. Discard aborts the upload."""

    def __init__(self, client, bucket: str, key: str, content_type: str):
        self.client, self.bucket, self.key, self.content_type = client, bucket, key, content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []
        self._finished = False
        self.size = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)

    async def settle(self) -> None:
        while len(self._buffer) >= S3_PART_BYTES:
            part = bytes(self._buffer[:S3_PART_BYTES])
            del self._buffer[:S3_PART_BYTES]
            await asyncio.to_thread(self._send_part, part)

    def _send_part(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type)["UploadId"]
        number = len(self._parts) + 1
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, PartNumber=number,
                                         UploadId=self._upload_id, Body=part)
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def finish(self) -> dict:
        rest, self._buffer = bytes(self._buffer), bytearray()
        if self._upload_id is None:
            await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=self.key,
                                    Body=rest, ContentType=self.content_type)
        else:
            if rest:
                await asyncio.to_thread(self._send_part, rest)
            await asyncio.to_thread(self.client.complete_multipart_upload, Bucket=self.bucket,
                                    Key=self.key, UploadId=self._upload_id,
                                    MultipartUpload={"Parts": self._parts})
        self._finished = True
        return {"stored_as": self.key}

    async def discard(self) -> None:
        self._buffer = bytearray()
        if self._finished:
            await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self.key)
        elif self._upload_id is not None:
            await asyncio.to_thread(self.client.abort_multipart_upload, Bucket=self.bucket,
                                    Key=self.key, UploadId=self._upload_id)
