"""The check that the learner's `hit` stays exact when several processes hit one key at the same
moment: each process imports it from a module written for it and reports how many it admitted.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from backendlab import processes
from backendlab.checks import CheckFailed
from backendlab.checks.child import write_module
from backendlab.topics.ratelimit.checks.harness import Lab

BURST_PROCESSES = 4
BURST_HITS = 40
BURST_LIMIT = 50

# One burst process: import the learner's hit, wait for the common start, hit, print the admitted.
_WORKER = """
import json, sys, time
import redis
sys.path.insert(0, sys.argv[1])
from learner import hit
url, key = sys.argv[2], sys.argv[3]
limit, window, hits, start = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
client = redis.Redis.from_url(url)
client.ping()
time.sleep(max(0.0, start - time.time()))
now = lambda: time.time_ns() // 1_000_000
print(json.dumps(sum(bool(hit(client, key, limit, window, now())[0]) for _ in range(hits))))
"""


def concurrent_burst(lab: Lab) -> str:
    """Hit one key from several processes at once: exactly the limit must be admitted."""
    key = lab.key("burst")
    with tempfile.TemporaryDirectory(prefix="backendlab-lab06-") as folder:
        write_module(lab.fn, Path(folder, "learner.py"))
        start = time.time() + 1.5
        workers = [processes.start(f"lab06-burst-{i}", [
            sys.executable, "-c", _WORKER, folder, lab.url, key, str(BURST_LIMIT), "10000",
            str(BURST_HITS), str(start)]) for i in range(BURST_PROCESSES)]
        try:
            counts = []
            for worker in workers:
                worker.popen.wait(timeout=60)
                out = worker.output().strip().splitlines()
                if worker.popen.returncode != 0 or not out:
                    raise CheckFailed(f"a burst process failed: {' '.join(out[-1:]) or 'no output'}")
                counts.append(json.loads(out[-1]))
        finally:
            for worker in workers:
                worker.stop()
    admitted = sum(counts)
    total = BURST_PROCESSES * BURST_HITS
    if admitted != BURST_LIMIT:
        raise CheckFailed(f"{BURST_PROCESSES} processes sent {total} hits at once with limit "
                          f"{BURST_LIMIT}: {admitted} were admitted; read, decide and write in "
                          "one Lua script so no other client runs in between")
    return f"{total} hits from {BURST_PROCESSES} processes, exactly {admitted} admitted"
