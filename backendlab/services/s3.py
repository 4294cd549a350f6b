"""S3: S3_ENDPOINT_URL names MinIO or another S3; otherwise moto's server on a loopback port.

moto accepts any credentials and enforces none of S3's presign rules (expiry, signatures, POST
policy conditions); lessons that depend on those say so and run them against MinIO when configured.
The embedded server runs without moto's allow-every-origin CORS, so a preflight meets the bucket's
own CORS configuration, as on S3.
"""

from __future__ import annotations

import sys

import boto3
from botocore.config import Config

from backendlab import config, processes
from backendlab.services.base import Service

_MOTO_KEY = "testing"


def credentials() -> dict[str, str]:
    """Access key and secret: from the environment for a real S3, fixed ones for moto."""
    return {
        "aws_access_key_id": config.get("AWS_ACCESS_KEY_ID", _MOTO_KEY),
        "aws_secret_access_key": config.get("AWS_SECRET_ACCESS_KEY", _MOTO_KEY),
        "region_name": config.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


class S3Service(Service):
    name = "S3"
    env_var = "S3_ENDPOINT_URL"
    compose_service = "minio"

    def probe(self, address: str) -> str:
        client = boto3.client("s3", endpoint_url=address, config=Config(
            connect_timeout=2, read_timeout=4, retries={"max_attempts": 1}), **credentials())
        response = client.list_buckets()
        server = response["ResponseMetadata"]["HTTPHeaders"].get("server", "")
        if self._mode == "embedded" or "moto" in server.lower() or "werkzeug" in server.lower():
            import moto
            return f"moto {moto.__version__}"
        return server or "S3"

    def start_embedded(self) -> str:
        port = processes.free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        self._embedded = processes.start("s3", argv, port=port,
                                         env={"MOTO_DISABLE_GLOBAL_CORS": "1"}).wait_for_port()
        return f"http://127.0.0.1:{port}"

    def describe(self) -> str:
        return "" if self._mode == "real" else "embedded moto server (presign rules not enforced)"


service = S3Service()


def s3_endpoint() -> str:
    """The S3 endpoint URL (starts moto's server on first use)."""
    return service.address()


def s3_client(**kwargs):
    """A boto3 S3 client for the suite's S3."""
    return boto3.client("s3", endpoint_url=s3_endpoint(), **{**credentials(), **kwargs})


def delete_bucket(client, bucket: str) -> None:
    """Empty the bucket (every page of objects, and unfinished multipart uploads), then delete it."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=bucket)
