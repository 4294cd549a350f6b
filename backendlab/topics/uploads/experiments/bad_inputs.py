"""Experiment 6: the catalogue of hostile and broken uploads against a streamed-mode server, and
what is left afterwards."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

import httpx

from backendlab.topics.uploads import forms
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.experiments.common import Case, upload_server


@dataclass
class BadInputResult:
    cases: list[Case]
    files_left: int
    still_up: bool

    def status(self, case: str) -> int:
        return next(c.status for c in self.cases if c.case == case)

    def table(self) -> list[tuple[str, int, str]]:
        return [(c.case, c.status, c.answer) for c in self.cases]


def _slow_client(url: str, pause: float) -> Case:
    """Send the headers and the start of a file, then stall longer than the server waits."""
    host, port = url.removeprefix("http://").split(":")
    body = Part("file", filename="slow.png", content_type="image/png").header() + forms.png(600)
    with socket.create_connection((host, int(port)), timeout=pause + 5) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: {host}\r\nX-User: alice\r\n"
                     f"Content-Type: {forms.content_type()}\r\nContent-Length: 100000\r\n\r\n"
                     .encode() + body)
        reply = b""
        with contextlib.suppress(OSError):
            while b"}" not in reply:
                piece = sock.recv(4096)
                if not piece:
                    break
                reply += piece
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
    return Case("slow client (stalls mid-file)", status,
                reply.partition(b"\r\n\r\n")[2].decode(errors="replace"))


def bad_inputs(limit_kb: int = 256, read_timeout: float = 1.0) -> BadInputResult:
    """Every hostile or broken upload of the catalogue against a streamed-mode server."""
    png, limit = forms.png(2000), limit_kb * 1024
    one = [Part("file", png, "ok.png", "image/png")]
    sends = [
        ("oversized file", b"".join(forms.big_file(limit * 4)), headers()),
        ("too many files", encode([Part("f", png, f"{i}.png", "image/png") for i in range(4)]),
         headers()),
        ("too many fields", encode([Part(f"k{i}", b"v") for i in range(11)]), headers()),
        ("oversized text field", encode([Part("note", b"x" * (65 * 1024))]), headers()),
        ("executable renamed .png", encode([Part("f", forms.SAMPLES["elf"], "cat.png",
                                                 "image/png")]), headers()),
        ("HTML renamed .png", encode([Part("f", forms.SAMPLES["html"], "cat.png", "image/png")]),
         headers()),
        (".exe extension", encode([Part("f", png, "setup.exe", "image/png")]), headers()),
        ("truncated multipart body", encode(one)[:-40], headers()),
        ("missing boundary", encode(one), {"content-type": "multipart/form-data",
                                          "x-user": "alice"}),
        ("not multipart at all", png, {"content-type": "image/png", "x-user": "alice"}),
        ("empty file", encode([Part("f", b"", "empty.png", "image/png")]), headers()),
        ("no X-User header", encode(one), headers(user=None)),
    ]
    cases = []
    with upload_server(max_file_bytes=limit, read_timeout=read_timeout) as (server, folder):
        for case, body, sent_headers in sends:
            answer = httpx.post(server.url + "/upload", content=body, headers=sent_headers)
            cases.append(Case(case, answer.status_code,
                              answer.json().get("error", "stored (it should not be)")))
        cases.append(_slow_client(server.url, read_timeout * 2))
        time.sleep(0.2)
        still_up = httpx.get(server.url + "/health").status_code == 200
        left = sum(1 for _ in folder.iterdir())
    return BadInputResult(cases, left, still_up)
