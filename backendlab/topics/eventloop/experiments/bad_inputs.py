"""Experiment 5: broken and hostile uploads, an upload abandoned halfway, and what stays spooled."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

import httpx

from backendlab import datasets
from backendlab.topics.eventloop.experiments.common import CSV_HEADERS, MB, spool_server


@dataclass
class BadInputCase:
    """One hostile or broken upload and what the server answered."""

    case: str
    status: int
    answer: str


@dataclass
class BadInputResult:
    """Every bad input's answer, the malformed rows the good-but-messy CSV held, and what stayed
    spooled after a client hung up (files still open, files left on disk)."""

    cases: list[BadInputCase]
    leftover_files: int
    malformed_sent: int
    spooled_after_hang_up: int

    @property
    def malformed_counted(self) -> int:
        """How many malformed rows the server reported for the messy CSV."""
        return json.loads(self.cases[0].answer)["malformed"]

    def status(self, case: str) -> int:
        return next(c.status for c in self.cases if c.case == case)

    def table(self) -> list[tuple[str, int, str]]:
        return [(c.case, c.status, c.answer) for c in self.cases]


def _hang_up_mid_upload(url: str, path: str, declared: int, sent: bytes) -> None:
    """Promise `declared` bytes, send only `sent`, then close the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/csv\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode() + sent)
        time.sleep(0.2)


def bad_inputs(max_mb: float = 1) -> BadInputResult:
    """Send the server a CSV with bad rows, a non-CSV, an oversized and an undecodable body, and an
    upload abandoned halfway; count the spooled files left afterwards."""
    limit = int(max_mb * MB)
    good, info = datasets.generate(limit // 2, malformed_every=20)
    sends = [
        ("CSV with malformed rows", good, CSV_HEADERS),
        ("JSON sent to a CSV endpoint", b'{"rows": []}', {"content-type": "application/json"}),
        (f"body over the {max_mb:g} MB limit", good * 3, CSV_HEADERS),
        ("not UTF-8 (a binary file)", bytes(range(256)) * 100, CSV_HEADERS),
    ]
    cases = []
    with spool_server(max_bytes=limit) as (server, spool):
        for case, body, headers in sends:
            response = httpx.post(server.url + "/upload/process", content=body, headers=headers,
                                  timeout=30)
            cases.append(BadInputCase(case, response.status_code, response.text))
        _hang_up_mid_upload(server.url, "/upload/process", limit, good[:limit // 4])
        time.sleep(0.3)
        stats = httpx.get(server.url + "/stats").json()
        cases.append(BadInputCase("client hung up mid-upload", 0,
                                  f"spooled files still open: {stats['spooled']}"))
        leftover = len(list(spool.iterdir()))
    return BadInputResult(cases, leftover, info.malformed, stats["spooled"])
