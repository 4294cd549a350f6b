"""Presigned S3 URLs: the client moves the bytes, the server only signs and verifies.

A presigned POST carries a signed *policy*: the bucket, the exact key prefix, the Content-Type and
a content-length range; S3 refuses an upload that breaks it, and the signature expires. A
presigned PUT signs one key and the Content-Type header, and nothing about the size. A
presigned GET lets one client read one object for a few minutes. S3 (and MinIO) enforce all of
this; moto, the embedded emulator, enforces none of it, so `verify_object` re-checks on
completion what the server must never take on trust anyway: that the object exists and is what
was promised.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from botocore.exceptions import ClientError

from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.filetypes import HEAD_BYTES, sniff
from backendlab.topics.uploads.names import stored_name

UPLOAD_SECONDS = 300
DOWNLOAD_SECONDS = 60


def user_prefix(user: str) -> str:
    """Every key a user may upload to starts with this."""
    return f"uploads/{user}/"


def new_key(user: str, ext: str) -> str:
    """A fresh object key under the user's prefix: the client's filename is not in it."""
    return user_prefix(user) + stored_name(ext)


def presigned_post(client, bucket: str, key: str, content_type: str, max_bytes: int,
                   expires: int = UPLOAD_SECONDS) -> dict:
    """{"url", "fields"} for an HTML-form style POST of one object of at most `max_bytes`."""
    prefix = key.rpartition("/")[0] + "/"
    conditions = [["content-length-range", 1, max_bytes], {"Content-Type": content_type},
                  ["starts-with", "$key", prefix]]
    return client.generate_presigned_post(bucket, key, Fields={"Content-Type": content_type},
                                          Conditions=conditions, ExpiresIn=expires)


def presigned_put(client, bucket: str, key: str, content_type: str,
                  expires: int = UPLOAD_SECONDS) -> str:
    """A URL that PUTs one body to exactly `key`; the signature covers the Content-Type header,
    but no size: a PUT has no policy to carry a content-length range or a key prefix."""
    return client.generate_presigned_url("put_object", ExpiresIn=expires, Params={
        "Bucket": bucket, "Key": key, "ContentType": content_type})


def policy_of(fields: dict) -> dict:
    """The decoded policy document of a presigned POST's form fields."""
    return json.loads(base64.b64decode(fields["policy"]))


def presigned_get(client, bucket: str, key: str, filename: str,
                  expires: int = DOWNLOAD_SECONDS) -> str:
    """A URL that downloads one object for `expires` seconds, saved under `filename`."""
    disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
    return client.generate_presigned_url("get_object", ExpiresIn=expires, Params={
        "Bucket": bucket, "Key": key, "ResponseContentDisposition": disposition})


def verify_object(client, bucket: str, key: str, max_bytes: int, content_type: str) -> dict:
    """HEAD the object and sniff its first bytes; {"size", "type"} when it is what was promised.

    Refuses (409) when there is no object yet; deletes it and refuses (422) when its size or
    type breaks the promise, so a bad object never lingers.
    """
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            raise Rejected(409, f"no object at {key!r} yet: upload it with the presigned POST "
                                "first, then complete") from None
        raise
    size, declared = head["ContentLength"], head.get("ContentType", "")
    problem = None
    if not 0 < size <= max_bytes:
        problem = f"it is {size} bytes; allowed 1 to {max_bytes}"
    elif declared != content_type:
        problem = f"it was stored as {declared or 'no type'}, not {content_type}"
    else:
        first = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
        found = sniff(first["Body"].read())
        if found != content_type:
            problem = f"its bytes are {found or 'not a recognised type'}, not {content_type}"
    if problem:
        client.delete_object(Bucket=bucket, Key=key)
        raise Rejected(422, f"the uploaded object broke its promise ({problem}); it was deleted")
    return {"size": size, "type": content_type}
