"""The suite's Redis limiter vs the `limits` library's moving window, on the same Redis.

    backendlab bench ratelimit [--decisions 3000] [--points 100] [--keys 20]

One synchronous client per limiter; the limiters take turns in short rounds and each one's rate is
its median round, so that other load on the machine hits them alike and bursts of it do not count. Reports decisions per second and round trips per decision (command
packets the client's connections send, counted at the socket), then the suite's ratios to
`limits`. `limits`' `hit()` answers only yes or no; what the 429 headers need (remaining, reset)
costs it a `get_window_stats()` call more, measured as a third row. Keys go under a unique
prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from backendlab.measure import RedisRoundTrips
from backendlab.topics.ratelimit import RedisLimiter, Rule
from backendlab.services import ServiceUnavailable, redis_url, stop_embedded
from backendlab.services.redis import delete_keys, service

SUITE = "suite sliding log (Lua)"
LIMITS = "limits moving window, hit()"
LIMITS_STATS = "limits hit() + window stats"
TARGET_SPEED = 1.0  # at least as fast as `limits`' hit(), in one round trip


def deciders(url: str, prefix: str, points: int) -> dict:
    """{name: (decide(key), its round-trip counter)} per limiter, all at `points` per minute."""
    suite_trips, limits_trips, stats_trips = (RedisRoundTrips(url) for _ in range(3))
    suite = RedisLimiter(suite_trips.client, Rule("sliding_log", points, 60), f"{prefix}:suite")
    item = RateLimitItemPerMinute(points)

    def moving_window(trips: RedisRoundTrips, name: str) -> MovingWindowRateLimiter:
        return MovingWindowRateLimiter(RedisStorage(
            url, connection_pool=trips.client.connection_pool, key_prefix=f"{prefix}:{name}"))

    moving, moving_stats = moving_window(limits_trips, "limits"), moving_window(stats_trips, "stats")

    def with_stats(key: str):
        return moving_stats.hit(item, key), moving_stats.get_window_stats(item, key)

    return {SUITE: (lambda key: suite.hit(key), suite_trips),
            LIMITS: (lambda key: moving.hit(item, key), limits_trips),
            LIMITS_STATS: (with_stats, stats_trips)}


def measure(decide, trips: RedisRoundTrips, decisions: int, keys: int) -> tuple[float, int]:
    """(seconds, round trips) for `decisions` decisions spread over `keys` keys."""
    before = trips.count
    start = time.perf_counter()
    for i in range(decisions):
        decide(f"client-{i % keys}")
    return time.perf_counter() - start, trips.count - before


def run(decisions: int = 3000, points: int = 100, keys: int = 20, rounds: int = 30) -> dict:
    """{limiter: {decisions_per_s, round_trips_per_decision, speed_vs_limits}}.

    The limiters take turns in `rounds` short rounds; each one's rate comes from its median round,
    so a burst of other work on the machine during a few rounds does not decide the result.
    """
    url = redis_url()
    prefix = f"backendlab:bench:{uuid.uuid4().hex[:10]}"
    limiters = deciders(url, prefix, points)
    seconds = {name: [] for name in limiters}
    trips = dict.fromkeys(limiters, 0)
    per_round = max(1, decisions // rounds)
    cleaner = redis.Redis.from_url(url)
    try:
        for decide, counter in limiters.values():
            measure(decide, counter, min(50, per_round), keys)  # load scripts, open connections
        for _ in range(rounds):
            for name, (decide, counter) in limiters.items():
                elapsed, count = measure(decide, counter, per_round, keys)
                seconds[name].append(elapsed)
                trips[name] += count
    finally:
        delete_keys(cleaner, prefix)
        cleaner.close()
        for _, counter in limiters.values():
            counter.close()
    results = {name: {"decisions_per_s": per_round / statistics.median(seconds[name]),
                      "round_trips_per_decision": trips[name] / (per_round * rounds)}
               for name in limiters}
    base = results[LIMITS]["decisions_per_s"]
    for result in results.values():
        result["speed_vs_limits"] = result["decisions_per_s"] / base
    ratios = [theirs / ours for ours, theirs in zip(seconds[SUITE], seconds[LIMITS])]
    results[SUITE]["speed_quartiles"] = tuple(statistics.quantiles(ratios, n=4)) if rounds > 1 \
        else (ratios[0],) * 3
    return results


def report(results: dict) -> tuple[str, bool]:
    """The table and verdict printed by `main`, and whether the target was met."""
    lines = [f"{'limiter':30} {'decisions/s':>12} {'round trips/decision':>21} "
             f"{'vs limits hit()':>16}"]
    for name, r in results.items():
        lines.append(f"{name:30} {r['decisions_per_s']:12.0f} {r['round_trips_per_decision']:21.2f} "
                     f"{r['speed_vs_limits']:15.2f}x")
    suite, stats = results[SUITE], results[LIMITS_STATS]
    low, _, high = suite["speed_quartiles"]
    met = high >= TARGET_SPEED and suite["round_trips_per_decision"] <= 1.0
    lines.append(f"suite / limits hit(): {suite['speed_vs_limits']:.2f}x the decisions per second "
                 f"(middle half of the rounds {low:.2f}x to {high:.2f}x), "
                 f"{suite['round_trips_per_decision']:.2f} vs "
                 f"{results[LIMITS]['round_trips_per_decision']:.2f} round trips per decision")
    lines.append(f"suite / limits with the remaining and reset a 429 needs: "
                 f"{suite['decisions_per_s'] / stats['decisions_per_s']:.2f}x the decisions per "
                 f"second, {suite['round_trips_per_decision']:.2f} vs "
                 f"{stats['round_trips_per_decision']:.2f} round trips")
    lines.append(f"target (as fast as limits hit() within the spread of the rounds, i.e. upper "
                 f"quartile at least {TARGET_SPEED:g}x; one round trip): " + ("met" if met else "NOT met"))
    return "\n".join(lines), met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backendlab bench ratelimit",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=3000, help="per limiter")
    parser.add_argument("--points", type=int, default=100, help="limit per minute per key")
    parser.add_argument("--keys", type=int, default=20, help="client keys the decisions spread over")
    parser.add_argument("--rounds", type=int, default=30, help="turns each limiter takes")
    args = parser.parse_args(argv)
    if min(args.decisions, args.points, args.keys, args.rounds) < 1:
        parser.error("--decisions, --points, --keys and --rounds must be at least 1")
    try:
        url = redis_url()
        engine = f" ({service.describe()})" if service.describe() else ""
        print(f"Redis: {service.mode()} at {url}{engine}; "
              f"{args.decisions} decisions per limiter, {args.points}/min per key over "
              f"{args.keys} keys, one synchronous client each")
        results = run(args.decisions, args.points, args.keys, args.rounds)
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_embedded()
    text, met = report(results)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
