"""Experiment 5b: each rule of a presigned POST and GET broken straight against S3; a real S3 or
MinIO refuses them all, the embedded emulator (moto) does not."""

from __future__ import annotations

import time

import httpx

from backendlab.services.s3 import delete_bucket
from backendlab.topics.uploads import forms, presign
from backendlab.topics.uploads.experiments.common import Case, fetch


def s3_is_emulated() -> bool:
    """True when the suite's S3 is moto (which enforces no presign rule)."""
    from backendlab.services.s3 import service
    return service.info().version.startswith("moto")


def s3_enforcement(max_bytes: int = 2000) -> list[Case]:
    """Break each rule of a presigned POST and GET straight against S3; a real S3 or MinIO refuses
    every one (4xx), moto accepts them (2xx)."""
    from botocore.config import Config

    from backendlab.services.s3 import s3_client
    client = s3_client(config=Config(signature_version="s3v4"))
    bucket = f"backendlab-enforce-{time.time_ns() % 10**12}"
    client.create_bucket(Bucket=bucket)
    cases = []
    try:
        key = presign.new_key("alice", "png")

        def post(case: str, data: bytes, ctype: str = "image/png", change: dict | None = None):
            ticket = presign.presigned_post(client, bucket, key, "image/png", max_bytes)
            fields = {**ticket["fields"], **(change or {})}
            answer = httpx.post(ticket["url"], data=fields, files={"file": ("f", data, ctype)})
            cases.append(Case(case, answer.status_code, answer.text[:100]))

        post("POST a file over the signed size range", forms.png(max_bytes * 3))
        post("POST with another Content-Type than signed", forms.png(500), "text/html",
             {"Content-Type": "text/html"})
        post("POST to a key outside the user's prefix", forms.png(500),
             change={"key": "uploads/bob/overwrite.png"})
        client.put_object(Bucket=bucket, Key=key, Body=forms.png(500), ContentType="image/png")
        short = presign.presigned_get(client, bucket, key, "f.png", expires=1)
        cases.append(fetch("GET with its expiry changed in the URL",
                           short.replace("X-Amz-Expires=1&", "X-Amz-Expires=3600&")))
        time.sleep(2.1)
        cases.append(fetch("GET 2 s after the URL expired", short))
    finally:
        delete_bucket(client, bucket)
    return cases
