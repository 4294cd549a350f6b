"""The producer the crash check gives `process`: a send and its acknowledgement are points where
the crash plan may kill the process.
"""

from __future__ import annotations


class CrashingProducer:
    """The producer, except that a send and its acknowledgement are points where the crash plan
    of `lab` (a `harness.Lab`) may kill us. The acknowledgement's kill runs as the broker's answer
    arrives, before the coroutine that awaits it resumes: the copy is in its topic, the record not
    yet committed."""

    def __init__(self, producer, lab):
        self._producer, self._lab = producer, lab

    def __getattr__(self, name):
        return getattr(self._producer, name)

    async def send(self, *args, **kwargs):
        self._lab._reached("send")
        future = await self._producer.send(*args, **kwargs)
        future.add_done_callback(self._acknowledged)
        return future

    async def send_and_wait(self, *args, **kwargs):
        return await (await self.send(*args, **kwargs))

    def _acknowledged(self, future) -> None:
        if not future.cancelled() and future.exception() is None:
            self._lab._reached("sent")
