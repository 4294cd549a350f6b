"""Lab 05's checks: the key builder over dozens of parameter sets in shuffled orders, and the
cache-aside helper on a miss and a hit, with TTLs, under a burst on a cold key, and with Redis down.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backendlab.checks import Check, CheckFailed
from backendlab.processes import free_port
from backendlab.services import redis_url
from backendlab.topics.caching.checks.full_redis import FullRedis
from backendlab.topics.caching.checks.harness import JITTER, TTL, Lab, Loader

CATEGORIES = ("books", "games", "garden")
TRICKY = ({"category": "a:page=1"}, {"category": "a", "page": "1"})
USERS = ("alice", "bob", None)
BURST = 16
LOAD_SECONDS = 0.3


def _combinations() -> list[dict]:
    """Every question of a small catalogue: category × page × page size × optional sort."""
    combos = []
    for category, page, size, sort in itertools.product(CATEGORIES, (1, 2, 10), (10, 20),
                                                         (None, "price")):
        params = {"category": category, "page": page, "page_size": size}
        if sort:
            params["sort"] = sort
        combos.append(params)
    return combos


def _shuffled(params: dict, rng: random.Random) -> dict:
    items = list(params.items())
    rng.shuffle(items)
    return dict(items)


def _canonical(lab: Lab) -> str:
    rng = random.Random(5)
    combos = _combinations()
    for params in combos:
        first, second = lab.build_key("products", _shuffled(params, rng), None), \
            lab.build_key("products", _shuffled(params, rng), None)
        if first != second:
            raise CheckFailed(f"the same parameters in another order gave {first!r} and {second!r}: "
                              "sort the parameter names before joining them")
    return f"{len(combos)} parameter sets, each in two random orders, one key each"


def _unique(lab: Lab) -> str:
    combos = _combinations()
    keys = {}
    for params in combos:
        key = lab.build_key("products", params)
        if key in keys:
            raise CheckFailed(f"{keys[key]!r} and {params!r} share the key {key!r}: every parameter "
                              "that changes the answer must be in the key")
        keys[key] = params
    other = lab.build_key("reviews", combos[0])
    if other in keys:
        raise CheckFailed(f"resources 'products' and 'reviews' share the key {other!r}: start the "
                          "key with the resource name (its namespace)")
    tricky = [lab.build_key("products", params) for params in TRICKY]
    if tricky[0] == tricky[1]:
        raise CheckFailed(f"{TRICKY[0]!r} and {TRICKY[1]!r} both give {tricky[0]!r}: a value that "
                          "contains your separators must be escaped, e.g. urllib.parse.quote(str(v), "
                          "safe='')")
    return f"{len(combos) + 3} different questions, {len(combos) + 3} different keys"


def _no_leaks(lab: Lab) -> str:
    checked = 0
    for params in _combinations()[:12]:
        keys = [lab.build_key("orders", params, user) for user in USERS]
        if len(set(keys)) != len(USERS):
            raise CheckFailed(f"users {USERS!r} asking for {params!r} got the keys {keys!r}: one "
                              "user would be served another's data; put the user in the key")
        checked += 1
    private = lab.build_key("orders", {"page": 1}, "alice")
    spoofed = lab.build_key("orders", {"page": 1, "user": "alice"})
    if private == spoofed:
        raise CheckFailed(f"alice's private key {private!r} can be reached with a query parameter "
                          "user=alice; scope private keys apart from parameters, e.g. a "
                          "'user:{id}:' prefix")
    return f"{checked} parameter sets × {len(USERS)} users (one anonymous): all keys different"


def _hit_miss(lab: Lab) -> str:
    key = lab.key("hit-miss")
    loader = Loader({"items": [1, 2, 3], "page": 1})
    first = lab.load(key, loader)
    second = lab.load(key, loader)
    if first != loader.value or second != loader.value:
        raise CheckFailed(f"get_or_load returned {first!r} then {second!r}, expected "
                          f"{loader.value!r} both times: store JSON, return what load() returned")
    if loader.calls != 1:
        raise CheckFailed(f"load() ran {loader.calls} times for two calls on one key: the second "
                          "call must be served from Redis")
    if not lab.client.exists(key):
        raise CheckFailed(f"nothing was stored at {key!r}: SET the loaded value under the key given")
    return "first call: one load; second call: served from Redis"


def _ttl(lab: Lab) -> str:
    started = time.monotonic()
    for index in range(20):
        lab.load(lab.key(f"ttl-{index}"), Loader(index))
    made = lab.made_keys()
    forever = [key for key in made if lab.client.pttl(key) == -1]
    if forever:
        raise CheckFailed(f"{len(forever)} keys have no TTL (e.g. {forever[0]!r}): set px= or ex= "
                          "on every SET, lock keys too, or they live until evicted")
    data = [lab.client.pttl(lab.key(f"ttl-{index}")) for index in range(20)]
    # A key's remaining TTL has run down by the time since it was set, however slow the machine:
    # the lower bound takes off all the time this check has taken, the upper bound none.
    elapsed_ms = (time.monotonic() - started) * 1000
    low, high = TTL * 1000 - elapsed_ms - 100, TTL * (1 + JITTER) * 1000 + 50
    outside = [ms for ms in data if not low <= ms <= high]
    if outside:
        raise CheckFailed(f"with ttl={TTL:g} and jitter={JITTER:g}, a key expires in "
                          f"{outside[0] / 1000:.2f} s; expected {TTL:g} to "
                          f"{TTL * (1 + JITTER):g} s (ttl × (1 + random.uniform(0, jitter)))")
    spread = (max(data) - min(data)) / 1000
    if spread < TTL * JITTER / 4:
        raise CheckFailed(f"20 keys stored together expire within {spread:.2f} s of each other: add "
                          "the random jitter so keys cached together do not expire together")
    return f"every key has a TTL; 20 keys expire over a {spread:.1f} s spread"


def _stampede(lab: Lab) -> str:
    key = lab.key("stampede")
    forever: list[str] = []

    def keys_without_ttl() -> None:
        forever.extend(k for k in lab.made_keys() if lab.client.pttl(k) == -1)

    loader = Loader({"hot": True}, seconds=LOAD_SECONDS, during=keys_without_ttl)
    gate = threading.Barrier(BURST)
    answers, errors = [], []

    def one() -> None:
        gate.wait()
        try:
            answers.append(lab.load(key, loader))
        except CheckFailed as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    if errors:
        raise CheckFailed(errors[0])
    if len(answers) < BURST or any(answer != loader.value for answer in answers):
        raise CheckFailed(f"{BURST - len(answers)} of {BURST} concurrent callers got no answer "
                          "within 20 s, or a wrong one: waiters must read the value the lock "
                          "holder stored")
    if loader.calls > 2:
        raise CheckFailed(f"{BURST} concurrent calls on a cold key ran load() {loader.calls} times: "
                          "let one caller load (SET key:lock NX PX ...) while the others wait for "
                          "the value")
    if forever:
        raise CheckFailed(f"while load() ran, {forever[0]!r} had no TTL: if the loading process "
                          "crashed, that lock would block the key forever; set it with px=")
    return f"{BURST} concurrent calls on a cold key, load() ran {loader.calls} time(s)"


def _answer_despite(lab: Lab, client: redis.Redis, what: str) -> float:
    """Seconds get_or_load took to answer from load() through a failing `client`."""
    loader = Loader({"from": "database"})
    start = time.perf_counter()
    try:
        value = lab.load(lab.key("down"), loader, client=client)
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}: when {what}, catch redis.RedisError and answer from load()") \
            from None
    finally:
        client.close()
    seconds = time.perf_counter() - start
    if value != loader.value:
        raise CheckFailed(f"when {what}, get_or_load returned {value!r}, expected load()'s "
                          f"{loader.value!r}")
    if seconds > 3:
        raise CheckFailed(f"when {what}, the answer took {seconds:.1f} s: do not wait or retry "
                          "for long; the database can answer now")
    return seconds


def _redis_down(lab: Lab) -> str:
    down = redis.Redis(host="127.0.0.1", port=free_port(), decode_responses=True,
                       socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    unreachable = _answer_despite(lab, down, "Redis is unreachable")
    full = FullRedis.from_url(redis_url(), decode_responses=True)
    _answer_despite(lab, full, "Redis refuses writes (maxmemory reached)")
    return (f"Redis unreachable: answered from load() in {unreachable * 1000:.0f} ms; "
            "Redis refusing writes: answered too")


SUITE = [
    Check("keys: one key per question, whatever the parameter order", _canonical),
    Check("keys: different questions never share a key", _unique),
    Check("keys: no cross-user leaks", _no_leaks),
    Check("cache-aside: a miss loads, a hit does not", _hit_miss),
    Check("TTL with jitter on every key", _ttl),
    Check("stampede: one load for a burst on a cold key", _stampede),
    Check("Redis down: answers from the database", _redis_down),
]
