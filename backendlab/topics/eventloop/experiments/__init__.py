"""Experiments of notebook 01: what a CSV upload does to an asyncio server, and the fixes.

1. `upload_modes`: one upload parsed on the event loop vs streamed; /health latency and server RSS.
2. `offload`: several parses in `asyncio.to_thread` vs a process pool; latency and throughput.
3. `concurrency_limit` and `job_queue`: many users at once, refused with 503 + Retry-After, or
   accepted with 202 and a job id to poll; `ManyUsers` draws both in one figure.
   `durable_queue`: the same jobs in the server's memory and in Redis with RQ workers, each
   queue's process SIGKILLed mid-run: retries, the failed registry, and which jobs were lost.
4. `scale_out`: the same CPU-bound requests against 1 and 2 uvicorn worker processes.
5. `bad_inputs`: malformed, oversized, non-CSV and undecodable bodies, and an upload abandoned
   halfway; what the server answered and what stayed spooled.

Each returns a result dataclass with `summary()` (or `table()`) and, when the notebook draws it,
`plot()`. Every server an experiment starts, and every file it spools, is gone when it returns.
"""

from backendlab.topics.eventloop.experiments.bad_inputs import BadInputResult, bad_inputs
from backendlab.topics.eventloop.experiments.concurrency_limit import LimitResult, concurrency_limit
from backendlab.topics.eventloop.experiments.durable_queue import DurableQueueResult, durable_queue
from backendlab.topics.eventloop.experiments.job_queue import QueueResult, job_queue
from backendlab.topics.eventloop.experiments.many_users import ManyUsers
from backendlab.topics.eventloop.experiments.offload import OffloadComparison, offload
from backendlab.topics.eventloop.experiments.scale_out import ScaleResult, scale_out
from backendlab.topics.eventloop.experiments.upload_modes import UploadComparison, upload_modes

__all__ = ["BadInputResult", "DurableQueueResult", "LimitResult", "ManyUsers", "OffloadComparison", "QueueResult",
           "ScaleResult", "UploadComparison", "bad_inputs", "concurrency_limit", "durable_queue", "job_queue",
           "offload", "scale_out", "upload_modes"]
