"""The durable queue's job and scheduler: RQ runs `parse_job` in its worker processes.

`parse_job` parses a spooled CSV with the server's own `parse_file`; a flaky job fails its first
attempt (a storage blip), so RQ's `Retry` brings it back. `python -m` this module runs RQ's own
scheduler for one queue: it moves retries whose interval has passed back into the queue.
"""

from __future__ import annotations

import sys

import redis
from rq import get_current_job
from rq.scheduler import RQScheduler

from backendlab.topics.eventloop.server import parse_file


class StorageBlip(ConnectionError):
    """A transient failure: the same job succeeds when it is tried again."""


def parse_job(path: str, flaky: bool = False) -> dict:
    """Count the rows of the CSV at `path`; a flaky job raises `StorageBlip` on its first attempt."""
    job = get_current_job()
    job.meta["attempts"] = job.meta.get("attempts", 0) + 1
    job.save_meta()
    if flaky and job.meta["attempts"] == 1:
        raise StorageBlip("storage not ready (first attempt only)")
    return parse_file(path)


def main(url: str, queue: str) -> None:
    """Run RQ's scheduler for `queue` until TERM, named after the queue so its keys can be found."""
    RQScheduler([queue], connection=redis.Redis.from_url(url), name=f"{queue}-scheduler").work()


if __name__ == "__main__":
    main(*sys.argv[1:3])
