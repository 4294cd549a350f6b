"""Notebook 06's results draw themselves: hand-built results, no Redis, server or locust needed."""

from backendlab.topics.ratelimit.experiments.algorithms import TraceRun
from backendlab.topics.ratelimit.experiments.identities import KeyRun
from backendlab.topics.ratelimit.experiments.instances import LoadRun
from backendlab.topics.ratelimit.experiments.outage import OutageRun
from backendlab.topics.ratelimit.experiments.races import RaceRun
from backendlab.topics.ratelimit.experiments.responses import Attempt, ClientRun


def title(fig) -> str:
    return fig._suptitle.get_text()


def legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_trace_run_draws_admissions_per_algorithm():
    run = TraceRun([100, 900, 1100], 2, 1000, {"fixed_window": [True, True, True],
                                               "sliding_log": [True, True, False]}, True)
    fig = run.plot()
    ax = fig.axes[0]
    assert title(fig) == ("Admitted requests on the same trace (limit 2 per second): the fixed "
                          "window lets 2x through at its edge")
    assert legend(ax) == ["fixed_window", "sliding_log"]
    assert list(ax.get_lines()[1].get_ydata()) == [0, 1, 2]


def test_gcra_is_drawn_dashed_on_top_of_the_token_bucket_it_matches():
    same = [True, True, False]
    fig = TraceRun([100, 200, 300], 2, 1000, {"token_bucket": same, "gcra": same}, True).plot()
    ax = fig.axes[0]
    assert legend(ax) == ["token_bucket", "gcra (= token_bucket)"]
    assert ax.get_lines()[1].get_linestyle() != "-" and ax.get_lines()[0].get_linestyle() == "-"


def test_the_load_run_draws_both_stores_against_the_limit():
    run = LoadRun(40, 3, {"memory": 110, "redis": 40}, {"memory": 30, "redis": 100}, {"memory": 0, "redis": 0},
                  {"memory": ([0, 1], [50, 110]), "redis": ([0, 1], [30, 40])}, {"memory": 3, "redis": 3})
    fig = run.plot()
    ax = fig.axes[0]
    assert title(fig) == "Admitted by 3 workers, as a multiple of the limit: memory 2.8x, redis 1.0x"
    assert legend(ax) == ["memory", "redis", "limit (40)"]
    assert ax.get_xlabel() == "seconds of the locust run"


def test_the_race_run_draws_admissions_and_keys_without_ttl():
    run = RaceRun(100, 500, {"GET then INCR": 130, "Lua script": 100}, 20,
                  {"GET then INCR": 4, "Lua script": 0})
    fig = run.plot()
    ax = fig.axes[0]
    assert title(fig) == "500 requests at once, limit 100, admitted: GET then INCR 130, Lua script 100"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["admitted of 500 (limit 100)",
                                                           "keys left without a TTL (of 20)"]
    assert legend(ax) == ["GET then INCR", "Lua script"]


def test_the_client_run_draws_successes_against_the_need_and_requests_by_status():
    run = ClientRun(1, [Attempt("polite", 0, 200, {}), Attempt("hammering", 0, 429, {}),
                        Attempt("hammering", 0.1, 429, {}), Attempt("hammering", 0.2, 200, {})])
    fig = run.plot()
    progress, sent = fig.axes
    assert title(fig) == ("Both clients had their 1 successes within 0.2 s; hammering took 2 refusals, "
                          "polite 0")
    assert legend(progress) == ["polite", "hammering", "needed: 1"]
    assert list(progress.get_lines()[1].get_ydata()) == [0, 1]
    assert legend(sent) == ["200 OK", "429 Too Many Requests"] and sent.get_yscale() == "log"
    assert [t.get_text() for t in sent.texts] == ["1", "1", "0", "2"]


def test_the_key_run_draws_admissions_per_way_of_reading_the_ip():
    run = KeyRun(5, 30, 3, {"socket peer": {"attacker": 5, "honest": 0},
                            "trusted proxy only": {"attacker": 5, "honest": 3}}, {}, [])
    fig = run.plot()
    assert title(fig) == ("30 spoofed requests through one proxy: 'socket peer' admits 5,\n"
                          "the other ways at most 5 (the honest user sends 3)")
    assert legend(fig.axes[0]) == ["attacker", "honest"] and len(fig.axes[0].patches) == 4


def test_the_outage_run_marks_when_redis_stopped():
    run = OutageRun(5, 1.0, 0.5, {"open": [(0.1, 200), (0.6, 200)], "closed": [(0.1, 200), (0.6, 503)]})
    fig = run.plot()
    ax = fig.axes[0]
    assert title(fig) == "After Redis stops: open admits 1 of 1, closed admits 0 of 1"
    assert legend(ax) == ["open", "closed", "Redis stopped"]
    assert list(ax.get_lines()[1].get_ydata()) == [1, 1]
