"""What an upload endpoint must bound, and why: every unbounded number is a way to exhaust it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass

from backendlab.servers.errors import Rejected
from backendlab.servers.flags import number, option, whole_number

MB = 2**20


@dataclass(frozen=True)
class Limits:
    """The limits one upload request is held to.

    `max_file_bytes` caps each file (disk, and memory in memory mode); `max_files` and
    `max_fields` cap the parts (each costs parsing and bookkeeping); `max_field_bytes` caps a
    plain text field (it is held in memory); `read_timeout` is the longest wait for the next
    chunk of the body, and `body_timeout` the longest the whole body may take, so a slow client
    cannot hold a connection and a partial file forever (a byte every few seconds passes the
    first, not the second; 120 s is a 10 MB file at under 1 Mbit/s).
    """

    max_file_bytes: int = option(10 * MB, "largest file accepted; larger ones get 413",
                                 parse=whole_number(1))
    max_files: int = option(3, "files per request; more get 413", parse=whole_number(0))
    max_fields: int = option(10, "text fields per request; more get 413", parse=whole_number(0))
    max_field_bytes: int = option(64 * 1024, "largest text field; larger ones get 413",
                                  parse=whole_number(1))
    read_timeout: float = option(5.0, "seconds to wait for the next piece of a body before 408",
                                 parse=number(0, above=True))
    body_timeout: float = option(120.0, "seconds the whole body may take before 408",
                                 parse=number(0, above=True))

    def as_dict(self) -> dict:
        return asdict(self)


def timed_receive(receive, timeout: float, deadline: float):
    """An ASGI `receive` that refuses with 408 when the next piece of the request body takes
    longer than `timeout` seconds, or the whole body longer than `deadline` seconds from the
    first read; once the body is complete it waits as long as needed."""
    complete = False
    ends = None

    async def receive_within():
        nonlocal complete, ends
        if complete:
            return await receive()
        now = time.monotonic()
        ends = now + deadline if ends is None else ends
        wait = min(timeout, ends - now)
        try:
            if wait <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(receive(), wait)
        except TimeoutError:
            if wait < timeout:
                raise Rejected(408, f"the body took longer than {deadline:g} s: the upload was "
                                    "too slow and was dropped; try again") from None
            raise Rejected(408, f"no body data for {timeout:g} s: the upload was too slow "
                                "and was dropped; try again") from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return receive_within
