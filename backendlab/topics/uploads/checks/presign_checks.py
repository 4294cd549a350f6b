"""Lab 02's checks of the presign function: the policy it signs (size, type, key prefix, expiry),
and a client uploading with it straight to the suite's S3.
"""

from __future__ import annotations

import time

import httpx

from backendlab.checks import Check, CheckFailed, describe_error
from backendlab.topics.uploads import forms
from backendlab.topics.uploads.checks.harness import Lab


def _presign_policy(lab: Lab) -> str:
    from backendlab.topics.uploads.presign import policy_of
    ticket = _call_presign(lab)
    key = ticket["fields"].get("key", "")
    if not key.startswith("uploads/alice/") or "cat" in key:
        raise CheckFailed(f"the key {key!r} should be uploads/alice/ + a generated name "
                          "(presign.new_key): never the client's filename")
    policy = policy_of(ticket["fields"])
    conditions = policy.get("conditions", [])
    ranges = [c for c in conditions if isinstance(c, list) and c[0] == "content-length-range"]
    if not ranges or ranges[0][2] > 5000 or ranges[0][1] < 0:
        raise CheckFailed(f"no content-length-range up to max_bytes in the signed conditions "
                          f"{conditions}: without it a client may upload any size")
    if {"Content-Type": "image/png"} not in conditions and \
            ["eq", "$Content-Type", "image/png"] not in conditions:
        raise CheckFailed("the Content-Type is not pinned in the conditions: add "
                          "{'Content-Type': content_type} to Conditions and Fields")
    if ["starts-with", "$key", "uploads/alice/"] not in conditions:
        raise CheckFailed("the key prefix is not signed: add ['starts-with', '$key', "
                          "'uploads/alice/'] so the client cannot write elsewhere")
    expires = time.mktime(time.strptime(policy["expiration"][:19], "%Y-%m-%dT%H:%M:%S"))
    if expires - time.mktime(time.gmtime()) > 3600:
        raise CheckFailed("the policy lives more than an hour: use ExpiresIn of a few minutes")
    return "size range, Content-Type and key prefix signed, expiry within the hour"


def _presign_works(lab: Lab) -> str:
    s3, bucket = lab.bucket()
    ticket = _call_presign(lab)
    sent = httpx.post(ticket["url"], data=ticket["fields"],
                      files={"file": ("cat.png", forms.png(900), "image/png")})
    if sent.status_code >= 300:
        raise CheckFailed(f"uploading with your presigned POST got {sent.status_code}: "
                          f"{sent.text[:200]}")
    head = s3.head_object(Bucket=bucket, Key=ticket["fields"]["key"])
    if head["ContentType"] != "image/png":
        raise CheckFailed(f"the object was stored as {head['ContentType']}: put Content-Type in "
                          "the Fields so the form sends it")
    return "a client uploaded with it straight to S3"


def _call_presign(lab: Lab) -> dict:
    try:
        ticket = lab.presign(*lab.bucket(), "alice", "../../cat.png", "image/png", 5000)
    except Exception as exc:
        raise CheckFailed(f"presign_upload raised {describe_error(exc, lab.presign)}") from None
    if not isinstance(ticket, dict) or not {"url", "fields"} <= set(ticket):
        raise CheckFailed(f"return generate_presigned_post's dict (url and fields), got {ticket!r}")
    return ticket


PRESIGN_SUITE = [
    Check("presign: size, type and key prefix signed", _presign_policy),
    Check("presign: a client can upload with it", _presign_works),
]
