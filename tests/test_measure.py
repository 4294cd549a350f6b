"""Measurements: percentiles, an open-loop probe that sees a whole stall, RSS sampling, free CPU."""

import math
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backendlab.measure import LatencyProbe, RssSampler, free_cores, percentiles


def test_percentiles_interpolate_and_handle_empty():
    assert percentiles(range(1, 101), (50, 99)) == pytest.approx({50: 50.5, 99: 99.01})
    assert all(math.isnan(v) for v in percentiles([]).values())


class PausableServer:
    """A loopback HTTP server whose answers can be held back, like a blocked event loop."""

    def __init__(self):
        self.open = threading.Event()
        self.open.set()
        gate = self.open

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                gate.wait()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.open.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pausable():
    server = PausableServer()
    yield server
    server.close()


def test_open_loop_probe_counts_every_request_caught_in_a_stall(pausable):
    with LatencyProbe(pausable.url, interval=0.02) as probe:
        time.sleep(0.3)
        pausable.open.clear()
        time.sleep(0.6)
        pausable.open.set()
        time.sleep(0.3)
    result = probe.result
    assert result.errors == 0
    assert result.due == sorted(result.due)
    assert len(result.latency) >= 50
    stalled = [v for v in result.latency if v > 0.2]
    assert len(stalled) >= 15, "an open-loop probe keeps sending during the stall"
    assert result.max >= 0.5
    assert result.p50 < 0.2


def test_probe_on_a_quiet_server_is_fast(pausable):
    # The median of a second of probing stays far under the 0.6 s stall the test above must see
    # (about 2 ms idle); a tail bound would not hold with every core busy (p99 reached 1.4 s).
    with LatencyProbe(pausable.url, interval=0.01) as probe:
        time.sleep(1.0)
    assert probe.result.p50 < 0.3
    assert probe.started > 0


def test_probe_records_failures_as_status_zero():
    with LatencyProbe("http://127.0.0.1:9/", interval=0.05, timeout=1) as probe:
        time.sleep(0.2)
    assert probe.result.status and set(probe.result.status) == {0}
    assert probe.result.errors == len(probe.result.status)


def test_rss_sampler_sees_a_child_allocate_and_free():
    script = ("import time; time.sleep(0.3); x = bytearray(150_000_000); "
              "x[::4096] = b'1' * len(x[::4096]); time.sleep(0.4); del x; time.sleep(0.4)")
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        with RssSampler(child.pid, interval=0.02) as sampler:
            child.wait(10)
    finally:
        child.kill()
    trace = sampler.trace
    assert trace.growth > 120_000_000
    assert trace.rss[-1] < trace.peak - 100_000_000, "freed (or exited): RSS fell back"
    assert trace.times == sorted(trace.times)


def test_free_cores_is_between_zero_and_n():
    cores = free_cores(n=2, seconds=0.2)
    assert 0.1 < cores <= 2.2
