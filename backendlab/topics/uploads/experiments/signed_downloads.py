"""Experiment 5a: who may download, expiry and tampering, on the server's HMAC links and on S3's
presigned GETs."""

from __future__ import annotations

import time

import httpx

from backendlab.topics.uploads import forms
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.experiments.common import ALICE, BOB, Case, direct_upload, fetch, upload_server


def signed_downloads(link_seconds: int = 1) -> list[Case]:
    """Alice stores a file locally and in S3; who gets a link, and what the links still open."""
    cases = []
    with upload_server(link_seconds=link_seconds) as (server, _):
        url = server.url
        local = httpx.post(url + "/upload", headers=headers(),
                           content=encode([Part("file", forms.png(2000), "me.png", "image/png")]))
        file_id = local.json()["files"][0]["id"]
        link = httpx.get(f"{url}/local/{file_id}/link", headers=ALICE).json()["url"]
        cases.append(fetch("local: alice opens her signed link", url + link))
        bob = httpx.get(f"{url}/local/{file_id}/link", headers=BOB)
        cases.append(Case("local: bob asks for a link to alice's file", bob.status_code,
                          bob.json()["error"]))
        other_id = file_id[:-1] + ("1" if file_id.endswith("0") else "0")
        tampered = link.replace(f"/local/{file_id}", f"/local/{other_id}")
        cases.append(fetch("local: the link pointed at another file", url + tampered))
        row = direct_upload(url, forms.png(2000)).json()
        s3_link = httpx.get(f"{url}/files/{row['id']}/download", headers=ALICE).json()["url"]
        cases.append(fetch("S3: alice opens her presigned GET", s3_link))
        bob = httpx.get(f"{url}/files/{row['id']}/download", headers=BOB)
        cases.append(Case("S3: bob asks for a link to alice's file", bob.status_code,
                          bob.json()["error"]))
        time.sleep(link_seconds + 1.1)
        cases.append(fetch(f"local: alice's link, {link_seconds + 1} s after it expired",
                           url + link))
    return cases
