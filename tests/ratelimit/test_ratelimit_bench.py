"""The benchmark: one command, a tiny run on every Redis engine, ratios measured in that run."""

import os
import re
import subprocess
import sys

import pytest

from backendlab.topics.ratelimit.bench import LIMITS, LIMITS_STATS, SUITE, report


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backendlab", "bench", *args],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def test_a_tiny_run_prints_rates_round_trips_and_ratios(suite_redis_both_ways):
    done = bench("ratelimit", "--decisions", "90", "--points", "5", "--keys", "3", "--rounds", "3")
    assert done.returncode in (0, 1), done.stderr
    out = done.stdout
    rows = {name: re.search(re.escape(name) + r"\s+(\d+)\s+([\d.]+)\s+([\d.]+)x", out)
            for name in (SUITE, LIMITS, LIMITS_STATS)}
    assert all(rows.values()), out
    assert [rows[name][2] for name in rows] == ["1.00", "1.00", "2.00"]
    assert all(int(row[1]) > 0 for row in rows.values())
    assert rows[LIMITS][3] == "1.00"
    speed = float(rows[SUITE][3])
    spread = re.search(rf"suite / limits hit\(\): {speed:.2f}x the decisions per second \(middle "
                       r"half of the rounds ([\d.]+)x to ([\d.]+)x\), 1\.00 vs 1\.00 round trips", out)
    assert spread and float(spread[1]) <= float(spread[2]), out
    assert re.search(r"suite / limits with the remaining and reset a 429 needs: [\d.]+x the "
                     r"decisions per second, 1\.00 vs 2\.00 round trips", out), out
    met = out.rstrip().endswith("one round trip): met")
    assert met == (done.returncode == 0), out
    assert (float(spread[2]) >= 0.995) if met else (float(spread[2]) < 1.005), out  # two decimals


def result(speed: float, trips: float, quartiles=None) -> dict:
    return {"decisions_per_s": 1000 * speed, "round_trips_per_decision": trips,
            "speed_vs_limits": speed, "speed_quartiles": quartiles or (speed, speed, speed)}


@pytest.mark.parametrize("quartiles, trips, met", [
    ((1.02, 1.05, 1.08), 1.0, True), ((0.93, 0.96, 1.01), 1.0, True),
    ((0.85, 0.88, 0.92), 1.0, False), ((1.1, 1.2, 1.3), 2.0, False)])
def test_the_target_is_not_measurably_slower_than_limits_in_one_round_trip(quartiles, trips, met):
    text, verdict = report({SUITE: result(quartiles[1], trips, quartiles), LIMITS: result(1.0, 1.0),
                            LIMITS_STATS: result(0.5, 2.0)})
    assert verdict is met
    assert text.endswith(": met" if met else ": NOT met")


def test_a_bad_benchmark_or_option_gets_a_usage_line():
    assert bench("nope").returncode == 2 and "benchmarks: ratelimit" in bench("nope").stdout
    done = bench("ratelimit", "--decisions", "0")
    assert done.returncode == 2 and "must be at least 1" in done.stderr
