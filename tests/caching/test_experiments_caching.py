"""The notebook-05 experiments at small sizes, on the real Redis and PostgreSQL (the notebook runs
them embedded): each shows its effect, and leaves no process, key or table behind."""

import contextlib

import httpx
import psutil
import pytest

from backendlab import processes
from backendlab.topics.caching import experiments as ca
from backendlab.services import database_url, redis_client, redis_url, sql_connect


@pytest.fixture(autouse=True)
def nothing_left_behind(experiment_redis_sql):
    """No process, no key of the experiments, no table of theirs survives a test (the services
    themselves, started first, stay)."""
    redis_url(), database_url()
    services = processes.running()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    assert processes.running() == services, "an experiment left a managed process running"
    gone = psutil.wait_procs([p for p in psutil.Process().children(recursive=True)
                              if p.pid not in before], timeout=5)
    assert gone[1] == [], "an experiment left a process running"
    with contextlib.closing(redis_client()) as client:
        assert list(client.scan_iter(match="backendlab:05:*", count=1000)) == []
    query = ("select name from sqlite_master where type = 'table'"
             if database_url().startswith("sqlite") else "select tablename from pg_tables")
    with contextlib.closing(sql_connect()) as conn:
        assert not [name for (name,) in conn.execute(query).fetchall() if name.startswith("bl05_")]


def test_services_in_use_names_the_mode(experiment_redis_sql):
    mode = "real" if experiment_redis_sql == "real" else "embedded"
    used = ca.services_in_use()
    assert used["Redis"].startswith(f"{mode}: redis://127.0.0.1:")
    assert used["SQL"].startswith(f"{mode}: {'postgresql' if mode == 'real' else 'sqlite'}://")


def test_a_hit_skips_the_query_and_is_many_times_faster():
    result = ca.cold_vs_warm(pages=8, query_delay=0.05)
    assert result.cold_how == ["miss"] * 8 and result.warm_how == ["hit"] * 8
    assert result.db_reads == 8
    # A miss waits the 0.05 s query delay, a floor that no machine's speed lowers; the speedup is
    # cold over warm in the same run (tens of times idle), and with no cache it would be ~1x.
    assert result.median("cold") >= 0.05
    assert result.speedup >= 5, result.summary()


def test_keys_live_until_their_ttl_and_are_gone_after_it():
    result = ca.ttl_expiry(ttl=0.5, pages=4)
    assert result.all_alive() and set(result.all_alive()) == {4}
    assert result.all_gone() and set(result.all_gone()) == {0}


def test_on_a_request_clock_each_longer_ttl_gives_more_hits_and_no_fewer_stale_reads():
    runs = ca.ttl_sweep(ttls=(0.03, 0.1, 0.3, 3.0), reads=120, every=0.025, progress=False)
    hits, stale = [r.hit_ratio for r in runs], [r.stale_ratio for r in runs]
    assert all(r.writes == 20 and r.reads == 120 and r.late <= 30 for r in runs), \
        [r.row() for r in runs]
    assert all(b - a >= 0.1 for a, b in zip(hits, hits[1:])), hits
    assert all(b >= a - 0.02 for a, b in zip(stale, stale[1:])), stale
    assert stale[-1] - stale[0] >= 0.4, stale
    assert runs[-1].db_reads * 5 <= runs[0].db_reads


def test_leftovers_counts_an_open_run_and_nothing_once_it_is_closed():
    with ca.Shop() as shop, shop.serve(query_delay=0.0) as server:
        httpx.get(server.url + "/products?category=books&page=1&page_size=5").raise_for_status()
        left = ca.leftovers()
        assert left["keys"] >= 1 and left["tables"] == 2 and left["processes"] == 1, left
    left = ca.leftovers()
    assert left["runs"] >= 1 and left["keys"] == left["tables"] == left["processes"] == 0, left


def test_naive_keys_serve_wrong_pages_and_other_users_data_the_designed_key_never():
    runs = ca.key_designs(requests=60, progress=False)
    naive, raw, good = runs["category-only"], runs["raw-url"], runs["designed"]
    assert naive.classic[1].got == naive.classic[0].expected != naive.classic[1].expected
    assert (raw.classic[3].user, raw.classic[3].got_owner) == ("bob", "alice")
    assert naive.wrong >= 10 and raw.leaked >= 5
    assert good.wrong == good.leaked == 0 and not any(a.wrong for a in good.classic)
    assert raw.keys > good.keys


def test_invalidating_on_write_keeps_reads_fresh_and_ttl_only_does_not():
    runs = ca.invalidation(ttl=5.0, reads=120, progress=False)
    assert runs["ttl"].stale_ratio >= 0.5, runs["ttl"].row()
    assert runs["delete"].stale == runs["version"].stale == 0
    assert runs["ttl"].hit_ratio > runs["delete"].hit_ratio


def test_a_lock_turns_a_stampede_into_one_database_read():
    runs = ca.stampede(burst=20, rounds=1, progress=False)
    none, lock = runs["none"], runs["lock"]
    assert set(none.statuses) == set(lock.statuses) == {200}
    assert len(none.statuses) == len(lock.statuses) == 20
    assert none.db_reads[0] >= 7, none.db_reads
    assert lock.db_reads[0] <= 2, lock.db_reads


def test_an_in_process_cache_is_stale_after_a_write_on_another_instance_redis_is_not():
    results = ca.two_instances(writes=4)
    assert results["memory"].stale >= 3
    assert results["redis"].stale == 0


def test_http_caching_revalidates_and_marks_private_data():
    result = ca.http_caching()
    assert [status for _, status, _, _ in result.steps] == [200, 304, 200, 200]
    assert result.steps[0][2].startswith("public") and result.steps[-1][2].startswith("private")
    assert result.steps[0][3] == result.steps[1][3] != result.steps[2][3]
    assert "Vary: X-User" in result.steps[-1][3]


def test_redis_outage_degrades_to_the_database_and_recovers():
    result = ca.redis_outage(seconds=2.0, down_at=0.5, up_at=1.1)
    assert set(result.status) == {200}
    during = result.served(result.down_at + 0.1, result.up_at)
    after = result.served(result.up_at + 0.5, 99)
    assert during and set(during) == {"bypass"}
    assert after and after.count("hit") >= len(after) / 2
    # Both medians come from the same run: a bypass pays the query delay, a hit does not.
    assert result.median_latency("bypass") > 2 * result.median_latency("hit")
    assert len(result.log_lines("cache degraded")) == len(result.log_lines("cache recovered")) == 1
    assert result.stats["degraded"] is False


def test_every_bad_input_gets_a_4xx_and_a_json_error():
    rows = ca.bad_inputs()
    assert len(rows) >= 12
    assert all(400 <= status < 500 and '"error":' in body for _, status, body in rows), rows
