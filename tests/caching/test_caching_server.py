"""The caching server (notebook 05): keys, cache-aside with fallback and single flight, HTTP
caching, invalidation, bad input answered with a 4xx and a JSON message, and Redis going down.

Servers run as real processes over the suite's Redis and SQL, embedded and real (`suite_redis_sql`).
"""

import asyncio
import contextlib
import logging
import re
import shutil
import time

import httpx
import pytest
from starlette.requests import Request

from backendlab import processes
from backendlab.topics.caching.experiments.outage import own_redis
from backendlab.topics.caching.experiments.shop import Shop
from backendlab.servers import start_server
from backendlab.servers.errors import Rejected
from backendlab.topics.caching.app import not_modified, whole_number
from backendlab.topics.caching.aside import CacheAside
from backendlab.topics.caching.products import connect, table_names
from backendlab.topics.caching.keys import KeyScheme
from backendlab.topics.caching.stores import CacheDown, MemoryStore, RedisStore
from backendlab.services import database_url, redis_client, redis_url

BOOKS = "/products?category=books&page=1&page_size=5"


def request_with(query: str = "", headers: dict | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "path": "/products", "query_string": query.encode(),
                    "headers": raw})


# Keys and validation --------------------------------------------------------------------------

def test_the_designed_key_names_every_parameter_and_puts_the_user_first():
    keys = KeyScheme("ns", "designed")
    assert keys.products("/products?page=2&category=books", "books", 2, 10, 3) == \
        "ns:products:v3:category=books:page=2:page_size=10"
    assert keys.orders("/me/orders", "alice", 1, 5) == "ns:user:alice:orders:page=1:page_size=5"
    assert keys.orders("/me/orders", "alice", 1, 5) != keys.orders("/me/orders", "bob", 1, 5)


def test_the_naive_schemes_collide_where_the_notebook_says():
    naive, raw = KeyScheme("ns", "category-only"), KeyScheme("ns", "raw-url")
    assert naive.products("", "books", 1, 10) == naive.products("", "books", 2, 10)
    path = "/me/orders?page=1"
    assert raw.orders(path, "alice", 1, 10) == raw.orders(path, "bob", 1, 10)
    assert raw.products("/p?a=1&b=2", "x", 1, 1) != raw.products("/p?b=2&a=1", "x", 1, 1)
    with pytest.raises(ValueError, match="unknown key scheme 'url'"):
        KeyScheme("ns", "url")


@pytest.mark.parametrize("query, expected", [("", 1), ("page=7", 7), ("page=%207%20", 7)])
def test_whole_number_accepts_bounded_integers(query, expected):
    assert whole_number(request_with(query), "page", 1, 1, 100) == expected


@pytest.mark.parametrize("query, message", [
    ("page=0", "page must be from 1 to 100, got 0"),
    ("page=1.5", "page must be a whole number from 1 to 100, got '1.5'"),
    ("page=" + "9" * 12, "page must be a whole number"),
    ("page=", "page must be a whole number"),
])
def test_whole_number_refuses_anything_else_with_400(query, message):
    with pytest.raises(Rejected) as caught:
        whole_number(request_with(query), "page", 1, 1, 100)
    assert caught.value.status == 400 and caught.value.message.startswith(message)


@pytest.mark.parametrize("header, matches", [('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True),
                                             ("*", True), ('"abd"', False), ("", False)])
def test_if_none_match_accepts_lists_weak_validators_and_star(header, matches):
    assert not_modified(request_with(headers={"If-None-Match": header}), '"abc"') is matches


def test_table_names_refuse_a_prefix_that_could_inject_sql():
    assert table_names("bl05_x") == ("bl05_x_products", "bl05_x_orders")
    with pytest.raises(ValueError, match="must match"):
        table_names("x; drop table users")


# Cache-aside, in process ----------------------------------------------------------------------

class Loads:
    """An async loader that counts its calls and takes `seconds`."""

    def __init__(self, seconds: float = 0.0):
        self.calls, self.seconds = 0, seconds

    async def __call__(self):
        self.calls += 1
        await asyncio.sleep(self.seconds)
        return {"n": self.calls}


class SwitchableStore(MemoryStore):
    """A memory store that raises CacheDown while `down`, counting the calls that reached it."""

    def __init__(self):
        super().__init__(ttl=30)
        self.down, self.calls = False, 0

    async def get(self, key):
        self.calls += 1
        if self.down:
            raise CacheDown("ConnectionError: refused")
        return await super().get(key)


def test_a_miss_loads_and_stores_and_a_hit_does_not_load():
    cache, load = CacheAside(MemoryStore(ttl=30), ttl=30), Loads()
    answers = [asyncio.run(cache.get("k", load)) for _ in range(3)]
    assert answers == [('{"n": 1}', "miss"), ('{"n": 1}', "hit"), ('{"n": 1}', "hit")]
    assert load.calls == 1 and cache.counts["hits"] == 2 and cache.counts["misses"] == 1


def test_no_store_means_every_request_loads():
    cache, load = CacheAside(None, ttl=30), Loads()
    assert [asyncio.run(cache.get("k", load))[1] for _ in range(2)] == ["off", "off"]
    assert load.calls == 2


def test_jitter_spreads_the_ttl_within_its_bounds():
    cache = CacheAside(MemoryStore(ttl=10), ttl=10, jitter=0.2)
    ttls = [cache.ttl_ms() for _ in range(200)]
    assert 10_000 <= min(ttls) and max(ttls) <= 12_000 and max(ttls) - min(ttls) > 1000


def test_a_store_that_fails_is_bypassed_logged_once_skipped_then_retried(caplog):
    store, load = SwitchableStore(), Loads()
    cache = CacheAside(store, ttl=30, retry_after=0.2)
    store.down = True
    with caplog.at_level(logging.WARNING, logger="backendlab.caching"):
        outcomes = [asyncio.run(cache.get("k", load))[1] for _ in range(5)]
        assert outcomes == ["bypass"] * 5 and load.calls == 5
        assert store.calls == 1, "while known down, the store is not tried again before retry_after"
        assert cache.state()["degraded"]
        store.down = False
        time.sleep(0.25)
        assert [asyncio.run(cache.get("k", load))[1] for _ in range(2)] == ["miss", "hit"]
    assert not cache.state()["degraded"]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("cache degraded: ConnectionError: refused; serving from the database")
    assert messages[1].startswith("cache recovered after")


class HeldLockStore(SwitchableStore):
    """A store where another caller always holds the lock."""

    async def lock(self, name, ttl):
        return None


def test_a_waiter_whose_cache_dies_answers_from_the_database_at_once():
    store, load = HeldLockStore(), Loads()
    cache = CacheAside(store, ttl=30, single_flight=True, lock_ttl=5)

    async def cache_dies_while_waiting():
        waiter = asyncio.create_task(cache.get("k", load))
        await asyncio.sleep(0.05)
        store.down = True
        return await waiter

    started = time.perf_counter()
    assert asyncio.run(cache_dies_while_waiting()) == ('{"n": 1}', "bypass")
    assert time.perf_counter() - started < 1, "a waiter must not sit out the lock's TTL"
    assert cache.counts["waited"] == cache.counts["bypass"] == 1


def test_single_flight_loads_once_for_a_concurrent_burst(suite_redis_sql, unique):
    async def burst(single_flight: bool) -> tuple[int, set[str]]:
        store, load = RedisStore(redis_url()), Loads(seconds=0.2)
        cache = CacheAside(store, ttl=30, single_flight=single_flight)
        try:
            answers = await asyncio.gather(*(cache.get(f"{unique}:{single_flight}", load)
                                             for _ in range(20)))
        finally:
            await store.close()
        return load.calls, {body for body, _ in answers}

    try:
        assert asyncio.run(burst(single_flight=False))[0] == 20
        assert asyncio.run(burst(single_flight=True)) == (1, {'{"n": 1}'})
    finally:
        with contextlib.closing(redis_client()) as client:
            for key in client.scan_iter(f"{unique}:*"):
                client.delete(key)


# The server, over real processes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def shop(suite_redis_sql):
    with Shop() as shop:
        yield shop


@pytest.fixture(scope="module")
def api(shop):
    with shop.serve("api", query_delay=0.02, ttl=30, jitter=0.1) as server:
        yield server


@pytest.fixture(scope="module")
def versioned(shop):
    with shop.serve("versioned", query_delay=0.0, ttl=30, invalidation="version") as server:
        yield server


def stats(server) -> dict:
    return httpx.get(server.url + "/stats").json()


def test_a_page_is_a_miss_then_a_hit_with_the_right_products(api):
    path = "/products?category=garden&page=2&page_size=4"
    first, second = httpx.get(api.url + path), httpx.get(api.url + path)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json() == second.json()
    assert [item["id"] for item in first.json()["items"]] == Shop.page_ids("garden", 2, 4)
    assert first.headers["cache-control"] == "public, max-age=30"
    assert first.headers["etag"] == second.headers["etag"]


def test_every_key_is_in_the_namespace_and_has_a_ttl(api, shop):
    httpx.get(api.url + BOOKS)
    httpx.get(api.url + "/me/orders?page=1", headers={"X-User": "carol"})
    keys = shop.keys("api:")
    assert f"{shop.namespace}:api:user:carol:orders:page=1:page_size=10" in keys
    with contextlib.closing(redis_client()) as client:
        ttls = {key: client.pttl(key) for key in keys}
    assert all(0 < ms <= 2 * 33_000 for ms in ttls.values()), ttls


def test_an_unchanged_page_revalidates_with_304_and_a_changed_one_does_not(api):
    etag = httpx.get(api.url + BOOKS).headers["etag"]
    not_modified_answer = httpx.get(api.url + BOOKS, headers={"If-None-Match": etag})
    assert not_modified_answer.status_code == 304 and not_modified_answer.content == b""
    httpx.put(api.url + f"/products/{Shop.page_ids('books', 1, 5)[2]}", json={"price": 3.5})
    changed = httpx.get(api.url + BOOKS, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_a_write_deletes_the_cached_pages_of_its_category(api):
    path = "/products?category=music&page=1&page_size=5"
    httpx.get(api.url + path)
    assert httpx.get(api.url + path).headers["x-cache"] == "hit"
    pid = Shop.page_ids("music", 1, 5)[0]
    written = httpx.put(api.url + f"/products/{pid}", json={"price": 7})
    assert written.status_code == 200 and written.json()["category"] == "music"
    fresh = httpx.get(api.url + path)
    assert fresh.headers["x-cache"] == "miss"
    assert {i["id"]: (i["price"], i["version"]) for i in fresh.json()["items"]}[pid] == \
        (7.0, written.json()["version"])


def test_versioned_keys_move_to_a_new_key_on_write(versioned, shop):
    path = "/products?category=games&page=1&page_size=5"
    httpx.get(versioned.url + path)
    assert httpx.get(versioned.url + path).headers["x-cache"] == "hit"
    httpx.put(versioned.url + f"/products/{Shop.page_ids('games', 1, 5)[0]}", json={"price": 1})
    assert httpx.get(versioned.url + path).headers["x-cache"] == "miss"
    keys = shop.keys("versioned:products:")
    assert [k.split(":")[5] for k in keys] == ["v0", "v1"], "the old version stays until its TTL"
    with contextlib.closing(redis_client()) as client:
        counter = f"{shop.namespace}:versioned:version:products:category=games"
        assert client.get(counter) == "1" and client.pttl(counter) > 30_000


def test_private_orders_are_per_user_and_marked_private(api):
    answers = {user: httpx.get(api.url + "/me/orders?page_size=3", headers={"X-User": user})
               for user in ("alice", "bob", "alice")}
    assert answers["alice"].json()["user"] == "alice"
    assert [o["id"] for o in answers["bob"].json()["items"]] == Shop.order_ids("bob", 1, 3)
    assert answers["bob"].headers["cache-control"] == "private, max-age=30"
    assert answers["bob"].headers["vary"] == "X-User"


def test_stats_count_database_reads_and_writes(api):
    before = stats(api)
    httpx.get(api.url + "/products?category=garden&page=9&page_size=1")
    httpx.get(api.url + "/products?category=garden&page=9&page_size=1")
    after = stats(api)
    assert after["db_reads"] - before["db_reads"] == 1
    assert after["hits"] - before["hits"] == 1 and after["misses"] - before["misses"] == 1
    assert after["degraded"] is False


BAD_GETS = [
    ("/products", {}, 400, "category is required: one of books, games, garden, music"),
    ("/products?category=weapons", {}, 404, "unknown category 'weapons'"),
    ("/products?category=books&page=0", {}, 400, "page must be from 1 to 100000, got 0"),
    ("/products?category=books&page=abc", {}, 400, "page must be a whole number"),
    ("/products?category=books&page_size=101", {}, 400, "page_size must be from 1 to 100, got 101"),
    ("/products?category=books&page=" + "9" * 40, {}, 400, "page must be a whole number"),
    ("/me/orders", {}, 401, "say who you are in the X-User header"),
    ("/me/orders", {"X-User": "alice:admin"}, 401, "say who you are in the X-User header"),
    ("/nothing-here", {}, 404, "no route GET /nothing-here; routes: GET /health, GET /stats"),
]


@pytest.mark.parametrize("path, headers, status, message", BAD_GETS)
def test_bad_reads_get_a_4xx_with_a_json_message(api, path, headers, status, message):
    answer = httpx.get(api.url + path, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message)


BAD_WRITES = [
    ("1001", b'{"price": "cheap"}', 422, "price must be a number from 0 to 1e9, got 'cheap'"),
    ("1001", b'{"price": true}', 422, "price must be a number"),
    ("1001", b'{"price": -1}', 422, "price must be a number"),
    ("1001", b'{"price": NaN}', 422, "price must be a number"),
    ("1001", b"[1, 2]", 400, 'send JSON like {"price": 12.5}'),
    ("1001", b"price=3", 400, 'send JSON like {"price": 12.5}'),
    ("1001", b'{"price": 1, "pad": "' + b"x" * 5000 + b'"}', 413, "send at most 4096 bytes"),
    ("999999", b'{"price": 1}', 404, "no product 999999"),
    ("9" * 30, b'{"price": 1}', 404, "no product 9999"),
    ("abc", b'{"price": 1}', 404, "no route PUT /products/abc; routes: GET /health"),
]


@pytest.mark.parametrize("pid, body, status, message", BAD_WRITES)
def test_bad_writes_get_a_4xx_with_a_json_message_and_change_nothing(api, pid, body, status, message):
    before = stats(api)["db_writes"]
    answer = httpx.put(api.url + f"/products/{pid}", content=body)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message)
    assert stats(api)["db_writes"] - before == (1 if pid == "999999" else 0)


def test_a_wrong_method_is_a_json_405_naming_the_routes(api):
    answer = httpx.post(api.url + "/products/1001", json={"price": 1})
    assert answer.status_code == 405
    assert answer.json()["error"].startswith("POST is not allowed on /products/1001; routes: ")
    assert 'PUT /products/{id} ({"price": n})' in answer.json()["error"]


def test_in_process_and_no_cache_modes(shop):
    with shop.serve("memory", cache="memory", query_delay=0.0) as memory, \
            shop.serve("none", cache="none", query_delay=0.0) as none:
        assert [httpx.get(memory.url + BOOKS).headers["x-cache"] for _ in range(2)] == ["miss", "hit"]
        assert [httpx.get(none.url + BOOKS).headers["x-cache"] for _ in range(2)] == ["off", "off"]
    assert shop.keys("memory:") == shop.keys("none:") == []


def test_seed_creates_the_tables_and_drops_them_at_exit(suite_redis_sql, unique):
    namespace = f"bltest:{unique}"
    with start_server("caching", tables=unique, namespace=namespace, seed=True, query_delay=0,
                      invalidation="ttl") as server:
        page = httpx.get(server.url + "/products?category=music&page=2&page_size=3").json()
        assert [item["id"] for item in page["items"]] == Shop.page_ids("music", 2, 3)
    with contextlib.closing(connect(database_url())) as conn, pytest.raises(Exception):
        conn.execute(f"select 1 from {table_names(unique)[0]}")
    with contextlib.closing(redis_client()) as client:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)


def test_a_missing_table_is_a_500_with_a_one_line_json_message(suite_redis_sql, unique):
    with start_server("caching", tables=unique, namespace=f"bltest:{unique}", query_delay=0) as server:
        answer = httpx.get(server.url + BOOKS)
    assert answer.status_code == 500
    assert answer.json()["error"].startswith("internal error: ")
    assert unique in answer.json()["error"] and "\n" not in answer.json()["error"]


# Redis down ------------------------------------------------------------------------------------

@pytest.fixture(params=["redis-server", "fakeredis"])
def engine(request):
    if request.param == "redis-server" and not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    return request.param


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_redis_down_serves_from_the_database_and_recovers(shop, engine):
    port = processes.free_port()
    own = own_redis(port, engine)
    try:
        with shop.serve("outage", redis_url=f"redis://127.0.0.1:{port}/0", query_delay=0.02,
                        redis_retry=0.2) as server:
            warm = [httpx.get(server.url + BOOKS).headers["x-cache"] for _ in range(2)]
            assert warm == ["miss", "hit"]
            own.stop()
            down = [httpx.get(server.url + BOOKS) for _ in range(5)]
            assert [(a.status_code, a.headers["x-cache"]) for a in down] == [(200, "bypass")] * 5
            assert [i["id"] for i in down[-1].json()["items"]] == Shop.page_ids("books", 1, 5)
            assert stats(server)["degraded"] is True
            own = own_redis(port, engine)
            wait_until(lambda: httpx.get(server.url + BOOKS).headers["x-cache"] == "hit")
            assert stats(server)["degraded"] is False
            log = server.process.output()
    finally:
        own.stop()
    assert log.count("cache degraded") == 1 and log.count("cache recovered") == 1


def test_a_redis_that_never_answered_still_leaves_the_api_working(shop):
    dead = f"redis://127.0.0.1:{processes.free_port()}/0"
    with shop.serve("dead", redis_url=dead, query_delay=0.0) as server:
        started = time.perf_counter()
        answers = [httpx.get(server.url + BOOKS) for _ in range(3)]
        assert time.perf_counter() - started < 3
    assert [(a.status_code, a.headers["x-cache"]) for a in answers] == [(200, "bypass")] * 3


def test_nothing_is_left_in_redis_or_the_database_after_a_shop(suite_redis_sql):
    with Shop() as shop, shop.serve(query_delay=0.0) as server:
        httpx.get(server.url + BOOKS)
        assert shop.keys()
    assert shop.keys() == []
    with contextlib.closing(connect(database_url())) as conn, pytest.raises(Exception):
        conn.execute(f"select 1 from {table_names(shop.tables)[0]}")


# Workers ---------------------------------------------------------------------------------------

def test_two_workers_share_the_one_redis_found_before_they_start(shop, monkeypatch):
    """No Redis configured and no --redis-url: `prepare` starts one embedded Redis in the serving
    process and hands its URL to both workers, so a page one worker cached is a hit on the
    other; that Redis stops with the server."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BACKENDLAB_SHARED_REDIS_URL", raising=False)
    seen: dict[int, dict] = {}

    def both_workers_served_the_page() -> bool:
        httpx.get(server.url + BOOKS, headers={"connection": "close"})
        counts = httpx.get(server.url + "/stats", headers={"connection": "close"}).json()
        seen[counts["pid"]] = counts
        return len(seen) == 2 and all(c["hits"] + c["misses"] for c in seen.values())

    with start_server("caching", workers=2, tables=shop.tables, namespace=shop.namespace,
                      database_url=database_url(), query_delay=0.0) as server:
        wait_until(both_workers_served_the_page, timeout=30)
        output = server.process.output()
    assert sum(c["misses"] for c in seen.values()) == 1, seen
    (url,) = re.findall(r"caching: cache in Redis at (redis://\S+)", output)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    wait_until(lambda: not processes.port_open("127.0.0.1", port))
