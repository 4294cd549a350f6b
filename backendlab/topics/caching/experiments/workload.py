"""A read/write workload that counts stale reads: a client reads the hot pages over and over, and
every so often first changes a product on one of them.

Reads and writes take turns in one client, so the mix (one write per `write_every` reads) is the
same on a busy laptop as on an idle one. With `every` set, reads also follow a fixed clock (one
every `every` s), so how many reads a TTL spans, and thus the hit and stale ratios, do not depend
on how fast the machine answers.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import httpx

from backendlab.topics.caching.experiments.shop import HOT_PAGES, HOT_SIZE, Shop, stats
from backendlab.servers import RunningServer


@dataclass
class Workload:
    """Reads (and how each was served) among writes to the products they show."""

    label: str
    reads: int = 0
    hits: int = 0
    stale: int = 0
    writes: int = 0
    db_reads: int = 0
    late: int = 0

    @property
    def hit_ratio(self) -> float:
        return self.hits / max(self.reads, 1)

    @property
    def stale_ratio(self) -> float:
        return self.stale / max(self.reads, 1)

    def row(self) -> dict:
        return {"reads": self.reads, "hit ratio": round(self.hit_ratio, 3),
                "stale ratio": round(self.stale_ratio, 3), "writes": self.writes,
                "database reads": self.db_reads, "late reads": self.late}


def read_while_writing(server: RunningServer, label: str, reads: int = 120, write_every: int = 6,
                       seed: int = 5, every: float | None = None) -> Workload:
    """Read a random hot page `reads` times; before every `write_every`-th read, change a random
    product on the hot pages. A read is stale when it shows a product at a version older than the
    one the database has held since an earlier write completed.

    `every`: start each read (and its write) `every` s after the previous one, as a request clock;
    a read that starts more than half a tick late counts as `late`, and the clock restarts from it
    rather than sending a burst to catch up. None: as fast as possible."""
    ids = [pid for category, page in HOT_PAGES for pid in Shop.page_ids(category, page, HOT_SIZE)]
    truth = dict.fromkeys(ids, 0)
    run, rng = Workload(label), random.Random(seed)
    before = stats(server)["db_reads"]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        tick = time.perf_counter()
        for number in range(1, reads + 1):
            if every is not None:
                wait = tick - time.perf_counter()
                time.sleep(max(wait, 0))
                run.late += wait < -every / 2
                tick = max(tick, time.perf_counter()) + every
            if number % write_every == 0:
                pid = rng.choice(ids)
                written = client.put(f"/products/{pid}", json={"price": round(rng.uniform(1, 99), 2)})
                truth[pid] = written.raise_for_status().json()["version"]
                run.writes += 1
            category, page = rng.choice(HOT_PAGES)
            response = client.get(f"/products?category={category}&page={page}&page_size={HOT_SIZE}")
            response.raise_for_status()
            run.reads += 1
            run.hits += response.headers["x-cache"] == "hit"
            run.stale += any(item["version"] < truth[item["id"]] for item in response.json()["items"])
    run.db_reads = stats(server)["db_reads"] - before
    return run
