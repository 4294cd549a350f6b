"""Experiment 5 of notebook 07: a worker process that commits after each batch is SIGKILLed between
a side effect and its commit. Restarted, it loses nothing and redoes the killed batch: the naive
email and the copy to the retry topic happen twice; the idempotent email (mark and send in one Lua
script) happens once. Runs on the test broker and the Redis this environment configures."""

import asyncio
import contextlib
import time

import fakeredis
import pytest

from backendlab import processes
from backendlab.topics.kafkaretry.experiments import topics_left
from backendlab.topics.kafkaretry.experiments.at_least_once import (at_least_once, produce, start_worker,
                                                                    wait_for_kill_point)
from backendlab.topics.kafkaretry.experiments.common import run_topics
from backendlab.topics.kafkaretry.experiments.worker import (done_key, parse, read_log, send, send_once,
                                                             sent_key)
from backendlab.services import redis as redis_service
from backendlab.services.base import ServiceUnavailable
from backendlab.services.redis import delete_keys, redis_client
from conftest import kafka_for_tests


@pytest.fixture(scope="module")
def broker():
    """The test broker; the suite's Redis is resolved first, as this environment configures it
    (the broker's blank environment would otherwise force an embedded one)."""
    redis_service.redis_url()
    try:
        with kafka_for_tests() as address:
            yield address
    finally:
        redis_service.service.stop()


@pytest.fixture(scope="module")
def run(broker):
    result = at_least_once(messages=40, batch=10, kill_after=25)
    workers = [p.name for p in processes.running() if p.name.startswith("kafka-worker")]
    return result, workers, topics_left()


def test_nothing_is_lost_in_any_mode(run):
    result, _, _ = run
    for mode in (result.naive, result.idempotent, result.retry_topic):
        assert mode.lost == [], mode.mode
        assert sorted(set(mode.effects)) == mode.produced and len(mode.produced) == 40


def test_the_worker_was_killed_between_side_effect_and_commit(run):
    result, _, _ = run
    for mode in (result.naive, result.idempotent, result.retry_topic):
        assert mode.kill_returncode == -9, mode.mode
        assert mode.killed.kill_point == 25 and mode.killed.committed == [10, 20]
        assert not mode.killed.done and mode.restarted.done
        assert mode.restarted.delivered[0] == "order-020" and mode.restarted.committed == [30, 40]


def test_the_restart_redelivers_the_killed_batch(run):
    result, _, _ = run
    assert result.killed_batch == [f"order-{n:03d}" for n in range(20, 26)]
    for mode in (result.naive, result.idempotent, result.retry_topic):
        assert mode.redelivered == result.killed_batch, mode.mode


def test_naive_side_effects_are_duplicated_idempotent_ones_are_not(run):
    result, _, _ = run
    assert result.naive.duplicated == result.killed_batch
    assert result.naive.duplicates == len(result.killed_batch) == 6
    assert result.retry_topic.duplicated == result.killed_batch
    assert result.idempotent.duplicates == 0 and len(result.idempotent.effects) == 40
    assert result.idempotent.restarted.skipped == result.killed_batch


def test_the_summary_and_the_figure(run):
    result, _, _ = run
    summary = result.summary()
    assert summary["naive"]["duplicates"] == 6 and summary["idempotent"]["duplicates"] == 0
    assert summary["retry topic"]["lost"] == 0 and summary["redis keys left"] == 0
    counts, timeline = result.plot().axes
    assert [t.get_text() for t in counts.get_xticklabels()] == \
        ["produced", "side effects", "duplicates", "lost"]
    assert len(timeline.get_lines()) == 3 + 2  # a line per mode, the kill and the last commit


def test_it_cleans_up_and_fits_its_budget(run):
    result, workers, topics = run
    assert result.keys_left == 0 and topics == [] and workers == []
    # 2x the ~15 s measured on a shared 2-core machine (the workers are Python processes).
    assert result.seconds < 30, f"took {result.seconds:.1f} s"


@pytest.fixture
def client(unique):
    with contextlib.closing(redis_client()) as connection:
        yield connection
        delete_keys(connection, unique)


@pytest.fixture(params=["suite", "fakeredis"])
def any_redis(request, unique):
    """The suite's Redis, and fakeredis's Lua in-process (what the embedded fakeredis runs)."""
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis(decode_responses=True)
        return
    with contextlib.closing(redis_client()) as connection:
        yield connection
        delete_keys(connection, unique)


def test_send_once_sends_once_however_often_it_is_called(any_redis, unique):
    assert send_once(any_redis, unique, "order-7") is True
    assert send_once(any_redis, unique, "order-7") is False
    assert send_once(any_redis, unique, "order-8") is True
    assert any_redis.lrange(sent_key(unique), 0, -1) == ["order-7", "order-8"]
    assert 0 < any_redis.pttl(done_key(unique, "order-7")) <= 24 * 3600 * 1000


def test_send_sends_on_every_call(client, unique):
    assert send(client, unique, "order-7") and send(client, unique, "order-7")
    assert client.lrange(sent_key(unique), 0, -1) == ["order-7", "order-7"]


def test_read_log_parses_the_events_a_worker_prints():
    log = read_log("delivered order-001 1\neffect order-001\ndelivered order-002 2\n"
                   "skipped order-002\ncommitted 3\nsome warning line\nKILL_POINT 2\ndone\n")
    assert (log.delivered, log.effects, log.skipped) == (["order-001", "order-002"],
                                                         ["order-001"], ["order-002"])
    assert (log.committed, log.kill_point, log.done) == ([3], 2, True)


def test_the_worker_refuses_a_mode_without_its_store(capsys):
    with pytest.raises(SystemExit):
        parse(["--bootstrap", "b", "--topic", "t", "--group", "g", "--mode", "naive"])
    assert "needs --redis and --prefix" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(["--bootstrap", "b", "--topic", "t", "--group", "g", "--mode", "retry-topic"])


def test_a_worker_that_dies_is_reported_with_its_output(broker):
    dead_redis = f"redis://127.0.0.1:{processes.free_port()}/0"

    async def scenario():
        async with run_topics(broker, retries=1) as topics:
            await produce(broker, topics.source, 3)
            proc = start_worker("naive", topics, broker, dead_redis, "unused", batch=10,
                                timeout=15, kill_after=2)
            try:
                with pytest.raises(processes.ProcessFailed, match="before its kill point") as info:
                    await wait_for_kill_point(proc, time.monotonic() + 15)
            finally:
                proc.stop()
        return str(info.value)

    message = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert "delivered order-000 0" in message
    assert message.rstrip().endswith("Connection refused."), message


def test_a_missing_redis_gives_a_clear_message(broker, monkeypatch):
    redis_service.service.stop()
    monkeypatch.delenv("BACKENDLAB_EMBEDDED", raising=False)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{processes.free_port()}/0")
    try:
        began = time.perf_counter()
        with pytest.raises(ServiceUnavailable, match="REDIS_URL"):
            at_least_once()
        assert time.perf_counter() - began < 10
    finally:
        redis_service.service.stop()
