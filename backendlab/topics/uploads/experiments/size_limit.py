"""Experiment 2: an oversized upload cut off at the limit: how much the server read, what is left."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from backendlab.peak import PeakWindow
from backendlab.topics.uploads.limits import MB
from backendlab.topics.uploads.experiments.common import post_big, stats, upload_server


@dataclass
class LimitRun:
    limit: int
    sent: int
    status: int
    error: str
    server_read: int
    rss_growth: int
    files_left: int
    still_up: bool


def size_limit(limit_mb: float = 1, send_mb: float = 40) -> LimitRun:
    """Send `send_mb` MB to a server whose file limit is `limit_mb` MB, streamed mode."""
    limit, sent = int(limit_mb * MB), int(send_mb * MB)
    with upload_server(max_file_bytes=limit) as (server, folder):
        with PeakWindow(server.pid) as window:
            response = post_big(server.url + "/upload", sent)
        after = stats(server)
        still_up = httpx.get(server.url + "/health").status_code == 200
        return LimitRun(limit, sent, response.status_code, response.json()["error"],
                        after["last_upload_bytes"], window.growth,
                        sum(1 for _ in folder.iterdir()), still_up)
