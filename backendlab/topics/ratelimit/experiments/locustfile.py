"""Locust users for notebook 06: one class per limiter store, each aimed at its own server.

Run by `instances.across_instances` as a subprocess, never imported in a kernel (locust patches
the standard library with gevent). Each user sends BACKENDLAB_LOCUST_RATE requests per second
until it has sent BACKENDLAB_LOCUST_MAX_REQUESTS, each on a new connection so that any worker
behind the port may take it. When all BACKENDLAB_LOCUST_USERS users are done, locust quits after
its CSV writer has had one more turn, so the CSV files hold every request. Hosts come from
BACKENDLAB_MEMORY_URL and BACKENDLAB_REDIS_URL and must be on 127.0.0.1.
"""

import os
from urllib.parse import urlsplit

import gevent
from locust import HttpUser, constant_throughput, stats, task
from locust.exception import StopUser

RATE = float(os.environ.get("BACKENDLAB_LOCUST_RATE", "10"))
MAX_REQUESTS = int(os.environ.get("BACKENDLAB_LOCUST_MAX_REQUESTS", "100"))
USERS = int(os.environ.get("BACKENDLAB_LOCUST_USERS", "0"))
finished = 0


def loopback(variable: str) -> str:
    url = os.environ.get(variable, "")
    if urlsplit(url).hostname != "127.0.0.1":
        raise SystemExit(f"{variable}={url!r}: this locustfile only targets http://127.0.0.1:PORT")
    return url


class _LimitedClient(HttpUser):
    abstract = True
    wait_time = constant_throughput(RATE)
    store = ""

    def on_start(self):
        self.sent = 0

    @task
    def data(self):
        if self.sent >= MAX_REQUESTS:
            self._finish()
        self.sent += 1
        with self.client.get("/api/data", headers={"Connection": "close"}, name=self.store,
                             catch_response=True) as response:
            if response.status_code == 200:
                response.success()
            elif response.status_code == 429:
                response.failure("429")
            else:
                response.failure(f"status {response.status_code}")

    def _finish(self):
        global finished
        finished += 1
        if finished == USERS:
            gevent.spawn_later(stats.CSV_STATS_INTERVAL_SEC * 1.5, self.environment.runner.quit)
        raise StopUser()


class MemoryLimitedClient(_LimitedClient):
    host = loopback("BACKENDLAB_MEMORY_URL")
    store = "memory"


class RedisLimitedClient(_LimitedClient):
    host = loopback("BACKENDLAB_REDIS_URL")
    store = "redis"
