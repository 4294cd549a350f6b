"""What the uploads experiments share: a server storing into a fresh folder, the attempts' `Case`,
the browser's part of a presigned upload, and fetching a link."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from backendlab.servers import start_server
from backendlab.topics.uploads import forms
from backendlab.topics.uploads.forms import headers

ALICE, BOB = {"x-user": "alice"}, {"x-user": "bob"}


@dataclass
class Case:
    """One attempt of an experiment: what was tried, the status it got, and the answer."""

    case: str
    status: int
    answer: str


@contextlib.contextmanager
def upload_server(**options):
    """An uploads server storing into a fresh temp folder; yields (server, folder)."""
    with tempfile.TemporaryDirectory(prefix="backendlab-uploads-") as folder:
        with start_server("uploads", upload_dir=folder, **options) as server:
            yield server, Path(folder)


def stats(server) -> dict:
    """The server's /stats: bytes received, CPU seconds, metadata rows..."""
    return httpx.get(server.url + "/stats").json()


def post_big(url: str, size: int, user: str = "alice", seconds: float = 0.0,
             timeout: float = 120) -> httpx.Response:
    """POST one generated file of `size` bytes as `user`, sent over `seconds`."""
    return httpx.post(url, content=forms.big_file(size, seconds=seconds), headers=headers(user),
                      timeout=timeout)


def direct_upload(url: str, data: bytes, filename: str = "photo.png",
                  content_type: str = "image/png", user: dict = ALICE) -> httpx.Response:
    """The browser's part of a presigned upload: ask, POST the file to S3, then complete."""
    ticket = httpx.post(url + "/presign", headers=user,
                        json={"filename": filename, "content_type": content_type}).json()
    sent = httpx.post(ticket["url"], data=ticket["fields"], timeout=120,
                      files={"file": (filename, data, content_type)})
    sent.raise_for_status()
    return httpx.post(url + "/complete", headers=user, json={"key": ticket["key"]})


def fetch(case: str, url: str) -> Case:
    """GET `url` as a browser would: the status, and the error or how many bytes came back."""
    response = httpx.get(url)
    text = response.json().get("error", "") if response.status_code >= 400 and \
        response.headers.get("content-type", "").startswith("application/json") else \
        f"{len(response.content)} bytes"
    return Case(case, response.status_code, text or response.text[:120])
