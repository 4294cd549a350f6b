"""Experiment 3a: spoofed file types against a Content-Type check and a magic-bytes check."""

from __future__ import annotations

import httpx

from backendlab.topics.uploads import forms
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.experiments.common import upload_server

SPOOFS = [
    # (what it really is, filename, declared Content-Type, bytes)
    ("a real PNG", "cat.png", "image/png", forms.SAMPLES["png"]),
    ("a Linux executable renamed", "cat.png", "image/png", forms.SAMPLES["elf"]),
    ("an HTML page with a script", "cat.png", "image/png", forms.SAMPLES["html"]),
    ("a PDF named .png", "cat.png", "image/png", forms.SAMPLES["pdf"]),
    ("HTML, honestly named", "page.html", "text/html", forms.SAMPLES["html"]),
]


def type_checks() -> list[dict]:
    """Each file of SPOOFS against a server that trusts Content-Type and one that sniffs bytes."""
    rows = [{"file": what, "sent as": f"{name}, {ctype}"} for what, name, ctype, _ in SPOOFS]
    for check in ("content-type", "magic"):
        with upload_server(type_check=check) as (server, _):
            for row, (_, name, ctype, data) in zip(rows, SPOOFS):
                answer = httpx.post(server.url + "/upload", headers=headers(),
                                    content=encode([Part("file", data, name, ctype)]))
                row[f"{check} check"] = answer.status_code
                row[f"{check} answer"] = answer.json().get("error", "stored")
    return rows
