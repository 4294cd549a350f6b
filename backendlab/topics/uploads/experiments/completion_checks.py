"""Experiment 4b: completing a presigned upload checks what S3 really holds: too early, a spoofed
object, a good one."""

from __future__ import annotations

import httpx

from backendlab.topics.uploads import forms
from backendlab.topics.uploads.experiments.common import ALICE, Case, direct_upload, stats, upload_server


def completion_checks() -> tuple[list[Case], int]:
    """Completion against what S3 holds: too early, a spoofed object, a good one; and the
    metadata rows recorded afterwards."""
    cases = []
    with upload_server() as (server, _):
        url = server.url
        ticket = httpx.post(url + "/presign", headers=ALICE,
                            json={"filename": "a.png", "content_type": "image/png"}).json()
        early = httpx.post(url + "/complete", headers=ALICE, json={"key": ticket["key"]})
        cases.append(Case("complete before uploading", early.status_code,
                          early.json()["error"]))
        for case, data in (("an executable uploaded as image/png", forms.SAMPLES["elf"]),
                           ("a real PNG", forms.png(4000))):
            answer = direct_upload(url, data)
            cases.append(Case(case, answer.status_code,
                              answer.json().get("error", "recorded")))
        rows = stats(server)["rows"]
    return cases, rows
