"""The eventloop server: its parsers agree, every mode counts rows right, bad input gets the right
4xx with a JSON message, limits refuse with Retry-After, and nothing is left on disk or running."""

import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from backendlab import datasets
from backendlab.servers import start_server
from backendlab.topics.eventloop import server as eventloop
from backendlab.servers.errors import Rejected
from backendlab.topics.eventloop.server import ChunkParser, RecordBoundary, parse_text

CSV = {"content-type": "text/csv"}


# Parsers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096, 65536])
def test_chunked_parse_agrees_with_whole_parse_at_any_chunk_size(chunk_size):
    data, info = datasets.generate(150_000, malformed_every=37)
    data += "é,ü,ß,中,😀,\"x\ny\"\n".encode()
    parser = ChunkParser()
    for i in range(0, len(data), chunk_size):
        parser.feed(data[i:i + chunk_size])
    chunked = parser.close()
    assert chunked == parse_text(data.decode())
    assert chunked == {"rows": info.rows + 1, "malformed": info.malformed}


def test_record_boundary_skips_newlines_inside_quotes():
    assert RecordBoundary().scan('a,b\n1,"x\ny') == 4
    assert RecordBoundary().scan('a,b\n1,"x\ny"\n2') == 12
    assert RecordBoundary().scan("no newline") == 0


def test_a_quote_inside_an_unquoted_field_is_a_literal_as_in_csv():
    text = 'label,n\ntv 5" screen,1\nradio,2\n'
    assert RecordBoundary().scan(text) == len(text)


TRICKY = ('name,a,b\n"Smith, Jane",1,2\ntv 5" screen,3,4\n"multi\nline ""quoted""",5,6\n'
          'x"y"z,7,8\n"closed"tail,9,10\nshort,1\n\n' + "plain,1,2\n" * 50)


@pytest.mark.parametrize("size", [1, 3, 7, 64, 4096])
def test_streamed_counts_equal_the_whole_text_parse_for_any_chunking(size):
    data = TRICKY.encode()
    parser = ChunkParser()
    for i in range(0, len(data), size):
        parser.feed(data[i:i + size])
    assert parser.close() == parse_text(TRICKY)


def test_an_unclosed_quote_is_refused_without_rescanning_the_carry():
    parser = ChunkParser(max_record=1_000_000)
    parser.feed(b'a,b\n1,"x\n')
    line = b"2,3\n" * 16_000
    started = time.perf_counter()
    with pytest.raises(Rejected, match="longer than"):
        for _ in range(20):
            parser.feed(line)
    assert time.perf_counter() - started < 1.0, "each chunk must be scanned once, not the whole carry"


def test_last_row_without_newline_is_counted():
    parser = ChunkParser()
    parser.feed(b"a,b\n1,2\n3,4")
    assert parser.close() == {"rows": 2, "malformed": 0}


def test_blank_lines_are_skipped_and_short_rows_are_malformed():
    assert parse_text("a,b,c\n\n1,2,3\n1,2\n\n1,2,3,4\n") == {"rows": 3, "malformed": 2}


def test_invalid_utf8_split_across_chunks_is_a_400():
    parser = ChunkParser()
    parser.feed(b"a,b\n1,\xe2\x82")
    with pytest.raises(Rejected) as caught:
        parser.feed(b"x\n")
    assert caught.value.status == 400


def test_unclosed_quote_is_refused_not_buffered_forever():
    parser = ChunkParser(max_record=1000)
    parser.feed(b'a,b\n1,"x\n')
    with pytest.raises(Rejected, match="unclosed quote"):
        for _ in range(100):
            parser.feed(b"x\n" * 50)


def test_rejected_survives_pickling_across_a_process_pool():
    import pickle

    copy = pickle.loads(pickle.dumps(Rejected(413, "too big", {"X": "1"})))
    assert (copy.status, copy.message, copy.headers) == (413, "too big", {"X": "1"})


# The server as a real process ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def spool(tmp_path_factory):
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def server(spool):
    with start_server("eventloop", max_bytes=2_000_000, spool_dir=spool, queue_size=2) as srv:
        yield srv


@pytest.fixture(scope="module")
def sample():
    return datasets.generate(400_000, malformed_every=25)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_health_and_stats(server):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok"
    stats = httpx.get(server.url + "/stats").json()
    assert stats["pid"] == health["pid"] and stats["in_flight"] == 0


@pytest.mark.parametrize("mode", eventloop.UPLOAD_MODES)
def test_every_mode_counts_rows_and_malformed_rows(server, sample, spool, mode):
    data, info = sample
    response = httpx.post(f"{server.url}/upload/{mode}", content=data, headers=CSV, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == info.rows
    assert response.json()["malformed"] == info.malformed > 0
    assert list(spool.iterdir()) == []


def test_charset_parameter_is_accepted(server):
    response = httpx.post(server.url + "/upload/streamed", content=b"a,b\n1,2\n",
                          headers={"content-type": "text/csv; charset=utf-8"})
    assert response.json()["rows"] == 1


@pytest.mark.parametrize("ctype", ["application/json", "image/png", "", "text/csv; charset=latin-1"])
def test_wrong_content_type_is_415_with_json_message(server, ctype):
    headers = {"content-type": ctype} if ctype else {}
    response = httpx.post(server.url + "/upload/streamed", content=b"a,b\n1,2\n", headers=headers)
    assert response.status_code == 415
    assert "text/csv" in response.json()["error"] or "UTF-8" in response.json()["error"]


@pytest.mark.parametrize("mode", ["buffered", "streamed", "process"])
def test_oversized_body_is_413_declared_or_chunked(server, spool, mode):
    big = b"a,b\n" + b"1,2\n" * 1_000_000
    declared = httpx.post(f"{server.url}/upload/{mode}", content=big, headers=CSV, timeout=30)
    chunked = httpx.post(f"{server.url}/upload/{mode}", headers=CSV, timeout=30,
                         content=(big[i:i + 65536] for i in range(0, len(big), 65536)))
    for response in (declared, chunked):
        assert response.status_code == 413
        assert "limit" in response.json()["error"]
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("mode", eventloop.UPLOAD_MODES)
def test_undecodable_body_is_400(server, spool, mode):
    response = httpx.post(f"{server.url}/upload/{mode}", content=b"a,b\n\xff\xfe,1\n", headers=CSV)
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]
    assert list(spool.iterdir()) == []


def test_unknown_mode_and_unknown_job_are_404_json(server):
    assert httpx.post(server.url + "/upload/magic", content=b"a\n", headers=CSV).status_code == 404
    response = httpx.get(server.url + "/jobs/nope")
    assert response.status_code == 404 and "no such job" in response.json()["error"]


def test_job_is_accepted_with_202_then_done_and_its_file_removed(server, sample, spool):
    data, info = sample
    response = httpx.post(server.url + "/jobs", content=data, headers=CSV)
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == body["status_url"] == f"/jobs/{body['job_id']}"
    assert wait_until(lambda: httpx.get(server.url + body["status_url"]).json()["status"] == "done")
    job = httpx.get(server.url + body["status_url"]).json()
    assert (job["rows"], job["malformed"]) == (info.rows, info.malformed)
    assert list(spool.iterdir()) == []


def test_bad_job_fails_with_a_message(server):
    response = httpx.post(server.url + "/jobs", content=b"a,b\n\xff\n", headers=CSV)
    url = server.url + response.json()["status_url"]
    assert wait_until(lambda: httpx.get(url).json()["status"] == "failed")
    assert "UTF-8" in httpx.get(url).json()["error"]


def disconnect_mid_upload(url: str, path: str, declared: int, sent: int) -> None:
    """Send headers promising `declared` bytes, send `sent` of them, then hang up."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        sock.sendall(b"a,b\n" + b"1,2\n" * (sent // 4))
        time.sleep(0.3)


@pytest.mark.parametrize("path", ["/upload/process", "/upload/thread", "/jobs"])
def test_client_disconnect_mid_upload_leaves_no_file(server, spool, path):
    disconnect_mid_upload(server.url, path, declared=1_500_000, sent=400_000)
    assert wait_until(lambda: list(spool.iterdir()) == [] and
                      httpx.get(server.url + "/stats").json()["spooled"] == 0)
    assert httpx.get(server.url + "/health").status_code == 200


def test_concurrency_limit_answers_503_with_retry_after(spool):
    with start_server("eventloop", max_concurrent=1, retry_after=7, spool_dir=spool) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as hog:
            hog.sendall(b"POST /upload/streamed HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                        b"Content-Length: 1000\r\n\r\na,b\n")
            assert wait_until(lambda: httpx.get(srv.url + "/stats").json()["in_flight"] == 1)
            refused = httpx.post(srv.url + "/upload/streamed", content=b"a,b\n1,2\n", headers=CSV)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "7"
            assert "busy" in refused.json()["error"]
        assert wait_until(lambda: httpx.get(srv.url + "/stats").json()["in_flight"] == 0)
        ok = httpx.post(srv.url + "/upload/streamed", content=b"a,b\n1,2\n", headers=CSV)
        assert ok.status_code == 200
        assert httpx.get(srv.url + "/stats").json()["max_in_flight"] == 1


def test_full_job_queue_answers_503_with_retry_after(spool):
    data, _ = datasets.generate(3_000_000)
    with start_server("eventloop", queue_size=1, pool_workers=1, spool_dir=spool) as srv:
        # Six at once: one job runs, one waits, and the others arrive while both places are taken.
        # Sent one after the other, a busy machine spooled each upload slower than the pool
        # parsed the last one, and the queue never filled.
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda _: httpx.post(srv.url + "/jobs", content=data,
                                                          headers=CSV, timeout=30), range(6)))
        codes = [r.status_code for r in statuses]
        assert 202 in codes and 503 in codes, codes
        refused = next(r for r in statuses if r.status_code == 503)
        assert refused.headers["retry-after"] == "1" and "queue full" in refused.json()["error"]
        assert wait_until(lambda: httpx.get(srv.url + "/stats").json()["queued"] == 0)


def test_pool_processes_are_gone_after_stop():
    server = start_server("eventloop", pool_workers=2)
    parent = psutil.Process(server.pid)
    children = parent.children(recursive=True)
    assert len(children) >= 2, "the warmed pool should have started its workers"
    server.stop()
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


def test_two_uvicorn_workers_both_answer():
    with start_server("eventloop", workers=2, pool_workers=1) as srv:
        pids = set()
        deadline = time.monotonic() + 15
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(httpx.get(srv.url + "/health", headers={"connection": "close"}).json()["pid"])
        assert len(pids) == 2


def test_record_boundaries_match_the_csv_module_on_random_text():
    rng = random.Random(7)
    for _ in range(400):
        text = "h1,h2,h3\n" + "".join(rng.choice('ab",\n') for _ in range(rng.randint(0, 60)))
        data = text.encode()
        parser = ChunkParser()
        cut = 0
        while cut < len(data):
            step = rng.randint(1, 9)
            parser.feed(data[cut:cut + step])
            cut += step
        assert parser.close() == parse_text(text), repr(text)


def test_a_dead_pool_worker_gets_503_then_the_pool_is_replaced(spool, sample):
    data, info = sample
    with start_server("eventloop", spool_dir=spool, pool_workers=2) as srv:
        victim = psutil.Process(srv.pid).children()[0]
        victim.kill()
        victim.wait(5)
        first = httpx.post(srv.url + "/upload/process", content=data, headers=CSV, timeout=30)
        assert first.status_code == 503 and first.headers["retry-after"]
        assert "restarted" in first.json()["error"]
        again = httpx.post(srv.url + "/upload/process", content=data, headers=CSV, timeout=30)
        assert again.status_code == 200 and again.json()["rows"] == info.rows
        job = httpx.post(srv.url + "/jobs", content=data, headers=CSV).json()
        assert wait_until(lambda: httpx.get(srv.url + job["status_url"]).json()["status"] == "done")
    assert list(spool.iterdir()) == []


def test_content_type_parameters_other_than_charset_are_accepted(server):
    response = httpx.post(server.url + "/upload/streamed", content=b"a,b\n1,2\n",
                          headers={"content-type": "text/csv; header=present; charset=UTF-8"})
    assert response.status_code == 200 and response.json()["rows"] == 1
