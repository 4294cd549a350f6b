"""Exponential backoff: doubles from the base, never passes the cap, and with full jitter spreads
retries uniformly below the ceiling, reproducibly for a seeded RNG."""

import random
import statistics

import pytest

from backendlab.topics.kafkaretry import Backoff, exponential_ms, full_jitter_ms


def test_delay_doubles_from_the_base_until_the_cap():
    assert [exponential_ms(n, 100, 1000) for n in range(1, 7)] == [100, 200, 400, 800, 1000, 1000]


def test_other_factors_and_huge_attempts_stay_capped():
    assert [exponential_ms(n, 10, 10_000, factor=3) for n in (1, 2, 3)] == [10, 30, 90]
    assert exponential_ms(10_000, 50, 30_000) == 30_000


@pytest.mark.parametrize("args", [(0, 100, 1000), (1, -1, 1000), (1, 100, -5), (1, 100, 1000, 0.5)])
def test_bad_arguments_are_refused(args):
    with pytest.raises(ValueError):
        exponential_ms(*args)


def test_full_jitter_stays_between_zero_and_the_ceiling_and_spreads():
    rng = random.Random(7)
    for attempt in range(1, 8):
        ceiling = exponential_ms(attempt, 100, 2000)
        draws = [full_jitter_ms(attempt, 100, 2000, rng) for _ in range(2000)]
        assert min(draws) >= 0 and max(draws) <= ceiling
        # Uniform on [0, ceiling]: mean near half the ceiling, both ends reached.
        assert statistics.mean(draws) == pytest.approx(ceiling / 2, rel=0.1)
        assert min(draws) < ceiling * 0.05 and max(draws) > ceiling * 0.95


def test_seeded_schedules_repeat_and_differ_between_seeds():
    rule = Backoff(base_ms=100, cap_ms=5000)
    assert rule.schedule(8, random.Random(1)) == rule.schedule(8, random.Random(1))
    assert rule.schedule(8, random.Random(1)) != rule.schedule(8, random.Random(2))


def test_without_jitter_the_schedule_is_the_plain_exponential():
    assert Backoff(base_ms=50, cap_ms=300, jitter=False).schedule(5) == [50, 100, 200, 300, 300]


def test_jitter_breaks_up_a_herd_of_simultaneous_failures():
    """100 messages failing together: without jitter all retry at the same instant."""
    plain, jittered = Backoff(100, 5000, jitter=False), Backoff(100, 5000)
    rng = random.Random(3)
    assert len({plain.delay_ms(4) for _ in range(100)}) == 1
    assert len({jittered.delay_ms(4, rng) for _ in range(100)}) > 80


def test_backoff_rule_validates_on_creation():
    with pytest.raises(ValueError):
        Backoff(base_ms=-1)
