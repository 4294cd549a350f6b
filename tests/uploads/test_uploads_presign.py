"""Presigned POST/GET against the suite's S3, the completion check, the metadata table, and
what only a real S3 (or MinIO) enforces: run there, skipped with the reason on the emulator."""


import httpx
import pytest
from botocore.config import Config

from backendlab.topics.uploads.experiments import s3_enforcement, s3_is_emulated
from backendlab.services.s3 import s3_client
from backendlab.services.sql import database_url
from backendlab.topics.uploads import forms, presign
from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.metadata import FileTable


@pytest.fixture
def bucket(unique):
    client = s3_client(config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket=unique)
    yield client, unique
    for item in client.list_objects_v2(Bucket=unique).get("Contents", []):
        client.delete_object(Bucket=unique, Key=item["Key"])
    client.delete_bucket(Bucket=unique)


def test_new_keys_sit_under_the_users_prefix_without_the_client_name():
    key = presign.new_key("alice", "png")
    assert key.startswith(presign.user_prefix("alice")) and key.endswith(".png") and len(key) == 50


def test_a_presigned_post_uploads_and_carries_its_policy(bucket):
    client, name = bucket
    key = presign.new_key("alice", "png")
    ticket = presign.presigned_post(client, name, key, "image/png", 5000, expires=60)
    policy = presign.policy_of(ticket["fields"])
    assert ["content-length-range", 1, 5000] in policy["conditions"]
    assert ["starts-with", "$key", "uploads/alice/"] in policy["conditions"]
    sent = httpx.post(ticket["url"], data=ticket["fields"],
                      files={"file": ("x.png", forms.png(900), "image/png")})
    assert sent.status_code == 204
    assert presign.verify_object(client, name, key, 5000, "image/png") == {"size": 900,
                                                                          "type": "image/png"}
    url = presign.presigned_get(client, name, key, "Zoë.png", expires=30)
    assert httpx.get(url).content == forms.png(900)


@pytest.mark.parametrize("body, ctype, status, words", [
    (forms.png(6000), "image/png", 422, "6000 bytes"),
    (forms.png(900), "text/html", 422, "stored as text/html"),
    (forms.SAMPLES["pdf"], "image/png", 422, "its bytes are application/pdf"),
])
def test_verify_object_deletes_what_breaks_the_promise(bucket, body, ctype, status, words):
    client, name = bucket
    client.put_object(Bucket=name, Key="uploads/alice/x.png", Body=body, ContentType=ctype)
    with pytest.raises(Rejected) as refused:
        presign.verify_object(client, name, "uploads/alice/x.png", 5000, "image/png")
    assert refused.value.status == status and words in refused.value.message
    assert client.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0


def test_verify_object_says_when_nothing_was_uploaded(bucket):
    client, name = bucket
    with pytest.raises(Rejected) as refused:
        presign.verify_object(client, name, "uploads/alice/none.png", 5000, "image/png")
    assert refused.value.status == 409


def test_the_file_table_records_and_drops(unique):
    table = FileTable(database_url(), unique)
    row = table.add("id1", "alice", "uploads/alice/a.png", "a.png", 10, "image/png")
    assert table.get("id1") == row and table.get("id2") is None and table.count() == 1
    with pytest.raises(Exception):
        table.add("id2", "bob", "uploads/alice/a.png", "b.png", 1, "image/png")
    table.drop()
    with pytest.raises(ValueError, match="safe table name"):
        FileTable(database_url(), "files; drop table x")


def test_the_emulator_accepts_what_s3_refuses_so_the_notebook_says_so():
    if not s3_is_emulated():
        pytest.skip("S3 here is real: see the enforcement test")
    assert [case.status for case in s3_enforcement()] == [204, 204, 204, 200, 200]


def test_a_real_s3_refuses_every_broken_rule():
    if s3_is_emulated():
        pytest.skip("S3 is moto, which enforces no presign rule; set S3_ENDPOINT_URL to MinIO or "
                    "real S3 to run this")
    cases = s3_enforcement()
    assert all(400 <= case.status < 500 for case in cases), cases
